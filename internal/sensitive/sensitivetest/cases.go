// Package sensitivetest holds the key names whose classification the
// tests of internal/sensitive, config and logging check, so that the
// configuration dump and the log masker are held to one list.
package sensitivetest

// Secret keys are redacted by the configuration dump and masked in logs.
var Secret = []string{
	// passwords
	"password", "PASSWORD", "db_password", "DB_PASSWORD", "dbPassword", "userPassword", "DB_PASSWORD2",
	"password2", "passwd", "passphrase", "pwd", "dbPwd", "pass", "db_pass", "--password",
	"database.password", "kafka.sasl.password", "sasl.password", "MYAPP_DATABASE__PASSWORD",
	// secrets and credentials
	"secret", "secrets", "client_secret", "clientSecret", "some.deep.secret.value", "key_header_secret",
	"credential", "credentials", "aws_credentials_file", "gcp_creds",
	// tokens
	"token", "access_token", "accessToken", "authtoken", "auth_token", "authToken", "refreshToken",
	"id_token", "csrf_token", "jwt", "bearer", "otp",
	// key material
	"api_key", "apiKey", "APIKey", "apikey", "api.key", "API_KEYS", "api_keys", "X-Api-Key", "x_api_key",
	"xApiKey", "private_key", "privateKey", "tls.private-key", "private", "ssh_keys", "signingKeys",
	"signingKey", "aws_secret_access_key", "AWS_ACCESS_KEY_ID", "client_key", "tls.key", "encryption_key",
	"master_key", "storage_account_key", "private_key_bytes", "secretBytes", "PasswordBytes", "api_key_size",
	// authentication
	"auth", "oauth", "basic_auth", "proxyAuth", "auth.mechanism", "auth_method", "authMethod", "auth_type",
	"authorization", "Proxy-Authorization", "authentication",
	// sessions and cookies
	"session", "user_session", "session_id", "sessionId", "SESSIONID",
	"cookie", "Set-Cookie",
	// certificates
	"cert", "tls_cert", "ca_cert", "tls_cert_path", "client-cert", "cacert", "certificate",
	// connection strings
	"dsn", "sentry_dsn", "database_dsn", "connection_string", "connectionString", "ConnectionString", "conn_str",
	"db_connection_strings", "dbconnectionstring", "connstr", "oauth2",
	// personal data
	"ssn", "cvv", "pin", "pin_code", "credit_card", "creditCardNumber", "card_number",
}

// Key keys hold only a lone "key" or "keys": the configuration dump
// redacts them (tls.key, key_file name key material there), the log masker
// keeps them (a record's, a cache's or a configuration key's name).
var Key = []string{
	"key", "keys", "header_key", "key_file", "record_key", "partition_key", "cache_key", "public_key",
	"ssl_key_location", "config.keys", "server.key_file",
}

// Plain keys are never redacted: a word that merely contains a sensitive
// one, or a key naming where a key is read from.
var Plain = []string{
	"", "x", "_", "--", "...", "日本語",
	"mapping", "author", "authority", "monkey", "keyboard", "turkey", "keyspace", "hotkeys_enabled",
	"bypass", "compass", "passenger", "passport", "passport_country", "passthrough",
	"tokenizer", "tokenizer_name", "spinner", "pinned", "pinyin", "pinot", "ssnake",
	"secretary", "secretary_name", "privacy", "cookbook", "concert", "apiVersion", "access_log",
	"host", "port", "brokers", "url", "user", "user_id", "topic", "timeout", "log_level", "MYAPP_LOG_LEVEL",
	"database.host", "kafka.topic", "requestDurationSeconds",
	"intern_keys", "batch_processing.intern_keys", "sort_keys",
	"key_header", "input.http.key_header", "keyHeader", "key_field", "partition_key_column",
	// measures and switches about a secret, not the secret
	"session_timeout_ms", "sessionTimeout", "kafka.consumer.session_timeout", "pass_count", "token_ttl",
	"secret_refresh_interval", "auth_retries", "tls.cert.enabled",
}
