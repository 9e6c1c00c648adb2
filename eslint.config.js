// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Module boundaries of STYLE.md §2, enforced per folder. */
const boundary = (files, patterns) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns }] },
});

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'coverage/**',
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
        group: [
          'express',
          '@kubernetes/client-node',
          '../webhook/*',
          '../controller/*',
          '../cni/*',
        ],
        message: 'pool must not import transports (STYLE.md §2)',
      },
    ],
  ),
  boundary(
    [
      'src/ip/**/*.ts',
      'src/pool/cidr.ts',
      'src/pool/config.ts',
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
          '../controller/*',
          '../cni/*',
        ],
        message: 'pool core takes node built-ins only (STYLE.md §2)',
      },
    ],
  ),
  boundary(
    ['src/webhook/**/*.ts'],
    [
      {
        group: ['../controller/*', '../cni/*', '../pool/redis-store.js', 'redis'],
        message: 'webhook gets the store injected (STYLE.md §2)',
      },
    ],
  ),
  boundary(
    ['src/controller/**/*.ts'],
    [
      {
        group: ['../webhook/*', '../cni/*', 'express'],
        message: 'controller must not import webhook, cni or express (STYLE.md §2)',
      },
    ],
  ),
  boundary(
    ['src/cni/**/*.ts'],
    [
      {
        group: [
          'express',
          'redis',
          '../webhook/*',
          '../controller/*',
          '../pool/redis-store.js',
          '@kubernetes/client-node',
        ],
        message: 'the CNI plugin never talks to Redis and stays light (DESIGN.md §6)',
      },
    ],
  ),
);
