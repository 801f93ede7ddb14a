// Package secret holds String, a string type for credentials that never
// prints its value.
//
// A String prints as [REDACTED] through fmt (every verb; in an unexported
// struct field, where fmt prints by reflection, as a pointer address),
// encoding/json, YAML and text marshalling and log/slog. Unmarshalling reads
// the real value, so config files and environment variables fill it like any
// string. The only way out is Expose, plus RevealJSON for an explicit round
// trip of a whole structure. Compare Strings with Equal: == compares
// identity.
//
//	type DB struct {
//		Host     string        `koanf:"host"`
//		Password secret.String `koanf:"password"`
//	}
//	slog.Info("db", "cfg", db)          // password=[REDACTED]
//	conn := dial(db.Host, db.Password.Expose())
package secret
