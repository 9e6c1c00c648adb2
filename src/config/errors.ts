/**
 * A configuration that cannot be used. Carries every problem found, not just the first
 * (an improvement on whereabouts' first-error-wins `LoadIPAMConfig`).
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID' as const;
  readonly retryable = false;
  readonly issues: readonly string[];

  constructor(source: string, issues: readonly string[], options?: ErrorOptions) {
    super(
      `${source}: ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n` +
        issues.map(i => `  - ${i}`).join('\n'),
      options,
    );
    this.name = new.target.name;
    this.issues = issues;
  }
}
