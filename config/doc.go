// Package config loads a service's configuration as a cascade of layers,
// decodes typed sections from it, redacts it for display and reloads it
// while the service runs.
//
// # Start
//
//	cfg, err := config.Load(ctx, config.Options{AppName: "myapp", Flags: cmd.Flags()})
//	if err != nil {
//		return err // names the file and line, the key, or the variable
//	}
//	kafka := DefaultKafkaConfig() // documented defaults
//	if err := cfg.Section("kafka", &kafka); err != nil {
//		return err // names kafka.port, the Go field, the bad value and its source
//	}
//	go cfg.Watch(ctx, config.WatchOptions{}) // hot reload
//
// # Layers
//
// Lowest priority first; each later layer wins key by key (a deep merge,
// so a layer that sets kafka.port keeps kafka.brokers from below):
//
//  1. Options.Defaults, values from code;
//  2. defaults.yaml;
//  3. settings.yaml;
//  4. settings.<env>.yaml, where env is Options.Env, else APP_ENV, else
//     ENVIRONMENT, else ENV, else "development";
//  5. the explicit file, Options.ConfigFile (--config); missing is an error;
//  6. environment variables with the app prefix;
//  7. CLI overrides: Options.Overrides, then the flags of Options.Flags that
//     the user changed.
//
// Layers 2 to 4 are looked for in every search directory and every match
// is merged, in this order: ./ and ./config/ (relative to Options.WorkDir),
// /config/ (Options.SystemDir), <os.UserConfigDir>/<app>/ and then
// Options.ExtraDirs. In one directory both .yml and .yaml are merged and
// .yaml wins. Files are YAML (JSON is valid YAML).
//
// Before the layers are read, <WorkDir>/.env (and ~/.env with
// Options.HomeDotEnv) is loaded into the process environment. It never
// overrides a variable that is already set, so the real environment
// always wins over .env.
//
// # Environment variables
//
// With prefix MYAPP (Options.EnvPrefix, by default the upper-cased app name
// with non-alphanumerics as '_'), MYAPP_DATABASE__HOST sets database.host:
// a double underscore nests and a single one stays in the key
// (MYAPP_LOG_LEVEL sets log_level). MYAPP__DATABASE__HOST is accepted too.
// Keys are lower-cased. MYAPPX_FOO is not taken for prefix MYAPP. Empty
// values count as unset. Two variables for one key, or a key that is both
// a value and a section, are an error. Values stay strings until a section
// or getter converts them: "8080" to an int, "true" to a bool, "a,b" to a
// list, "30s" to a duration.
//
// # Keys and sections
//
// Keys are dotted paths. File keys keep their case; write them in
// snake_case, lower case, so that environment variables can override them.
// Section decodes one section into a struct tagged `koanf:"name"`; the
// struct's values before the call are the defaults, so an absent section
// or key keeps its default. Durations take Go syntax or a bare number of
// seconds everywhere. A value that does not convert is an error naming the
// full key, the Go field, the value (redacted when the field is a
// secret.String or the key looks sensitive) and the layer it came from.
// Keys in a section that match no field are logged as a warning, or are an
// error with Options.Strict. Typed getters (String, Int, Float, Bool,
// Duration, Strings, Contains) read single keys.
//
// # Redaction
//
// DumpJSON, Effective and Sections never show a secret: values are
// redacted by type (secret.String fields of registered sections) and by
// key name (IsSensitiveKey: password, secret, token, key, credential,
// auth, session, private, cert, dsn, connection string, ... matched as
// words, so api_key is sensitive and keyboard is not; the log masker uses
// the same rules), and URL passwords and user-only URL tokens are masked.
//
// # Reload
//
// Reload, and Watch on file changes, SIGHUP or a period, re-run the whole
// cascade, re-decode every registered section from its defaults, run the
// validators added with AddValidator, and only then swap the new
// configuration in atomically and call the OnChange and Subscribe
// listeners of the sections that changed. A failed reload keeps the old
// configuration and is logged and counted in
// keel_config_reloads_total{result="failure"}.
package config
