/** A bad configuration value: stops start-up with a message that names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
