// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Module boundaries of docs/design.md §11, enforced per folder. */
const boundary = (files, patterns) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns }] },
});

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'coverage/**',
      'test-artifacts/**',
      'node_modules/**',
      'charts/**',
      '**/*.mjs',
      'eslint.config.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      eqeqeq: ['error', 'always'],
      complexity: ['error', 12],
      'max-depth': ['error', 3],
      'max-params': ['error', 4],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: { '@typescript-eslint/explicit-module-boundary-types': 'error' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      complexity: 'off',
      'max-params': 'off',
      'max-nested-callbacks': ['error', 8],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  boundary(
    ['src/pool/**/*.ts'],
    [
      {
        group: ['express', '@kubernetes/client-node', '../webhook/*', '../cni/*'],
        message: 'pool must not import transports (docs/design.md §11)',
      },
    ],
  ),
  boundary(
    [
      'src/ip/**/*.ts',
      'src/pool/pools-file.ts',
      'src/pool/errors.ts',
      'src/pool/store.ts',
      'src/pool/memory-store.ts',
      'src/pool/annotations.ts',
    ],
    [
      {
        group: [
          'redis',
          '@redis/*',
          'express',
          '@kubernetes/client-node',
          '../webhook/*',
          '../cni/*',
        ],
        message: 'pool core takes no redis, express or client-node (docs/design.md §11)',
      },
    ],
  ),
  boundary(
    ['src/webhook/**/*.ts'],
    [
      {
        group: ['../cni/*', '../pool/redis-store.js', 'redis'],
        message: 'webhook gets the store injected (docs/design.md §11)',
      },
    ],
  ),
  boundary(
    ['src/ui/**/*.ts'],
    [
      {
        group: [
          '../webhook/*',
          '../controller/*',
          '../cni/*',
          '../k8s/*',
          '../bin/*',
          '../pool/redis-store.js',
          'redis',
          '@redis/*',
          '@kubernetes/client-node',
        ],
        message:
          'the pool map reads the store it is given and serves pages; nothing else (docs/pool-map.md)',
      },
    ],
  ),
  // The pool map's browser script: plain JavaScript, no build step, no type information.
  {
    files: ['src/ui/assets/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'script',
      globals: {
        window: 'readonly',
        document: 'readonly',
        history: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
        FormData: 'readonly',
        HTMLCanvasElement: 'readonly',
        HTMLButtonElement: 'readonly',
        Element: 'readonly',
      },
    },
    rules: {
      ...tseslint.configs.disableTypeChecked.rules,
      '@typescript-eslint/explicit-module-boundary-types': 'off',
      complexity: ['error', 14],
    },
  },
  boundary(
    ['src/cni/**/*.ts'],
    [
      {
        group: [
          'express',
          'redis',
          '../webhook/*',
          '../pool/redis-store.js',
          '@kubernetes/client-node',
        ],
        message: 'the CNI plugin never talks to Redis and stays light (docs/design.md §8)',
      },
    ],
  ),
);
