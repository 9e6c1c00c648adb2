// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 at the version that the
// chosen k8s.io/kubernetes release requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
