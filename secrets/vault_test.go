package secrets

import (
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/secret"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	kafkaPW  = "kafka-pw-Vq9!x7Lr"
	kafkaPW2 = "kafka-pw-rotated-Zt3#p"
	rootTok  = "hvs.root-token-S3CR3T"
)

func noCache() CacheConfig { return CacheConfig{Enabled: ptr(false)} }

func appRoleCfg(vs *vaultServer) VaultConfig {
	return VaultConfig{Address: vs.addr(), MaxRetries: -1, Auth: VaultAuthConfig{
		Method: AuthAppRole, RoleID: vs.roleID, SecretID: secret.New(vs.secretID)}}
}

func vaultSources() map[string]SourceConfig {
	return map[string]SourceConfig{"kafka": {Ref: "vault:secret/data/kafka#password"}}
}

func TestVaultTokenAuthReadsKVv2WithNamespace(t *testing.T) {
	vs := newVaultServer(t)
	vs.issue(rootTok)
	vs.lookupTTL = 0 // a root token: no expiry, nothing to renew
	vs.put("secret/kafka", map[string]any{"password": kafkaPW, "user": "svc"})
	h := newHarness(t, Config{Sources: vaultSources(), Vault: VaultConfig{
		Address: vs.addr(), Namespace: "team-a", MaxRetries: -1,
		Auth: VaultAuthConfig{Token: secret.New(rootTok)}}})
	h.secret(kafkaPW, rootTok)

	v := h.get("kafka")
	if v.Secret.Expose() != kafkaPW || v.Version != "1" || v.Provider != "vault" {
		t.Fatalf("got %+v version %q", v, v.Version)
	}
	logins, _, lookups, reads := vs.counts()
	if logins != 0 || lookups != 1 || reads != 1 {
		t.Fatalf("logins=%d lookups=%d reads=%d, want 0,1,1", logins, lookups, reads)
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if len(vs.namespaces) == 0 || vs.namespaces[0] != "team-a" {
		t.Fatalf("namespace header not sent: %v", vs.namespaces)
	}
}

func TestVaultAppRoleLoginsOnceAndReusesTheClient(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	vs.put("secret/db", map[string]any{"password": "db-pw-QQ1"})
	// A token in the process environment must not leak into the client:
	// the resolved configuration decides.
	t.Setenv("VAULT_TOKEN", "hvs.from-process-env")
	cfg := Config{Cache: noCache(), Vault: appRoleCfg(vs), Sources: map[string]SourceConfig{
		"kafka": {Ref: "vault:secret/data/kafka#password"},
		"db":    {Provider: "openbao", Path: "secret/db", Key: "password"},
	}}
	h := newHarness(t, cfg)
	h.secret(kafkaPW, "db-pw-QQ1", vs.secretID, "hvs.login-1")
	for range 3 {
		if got := h.get("kafka").Secret.Expose(); got != kafkaPW {
			t.Fatalf("kafka = %q", got)
		}
		if got := h.get("db").Secret.Expose(); got != "db-pw-QQ1" {
			t.Fatalf("db = %q", got)
		}
	}
	logins, _, _, reads := vs.counts()
	if logins != 1 || reads != 6 {
		t.Fatalf("logins=%d reads=%d, want 1 login for 6 reads", logins, reads)
	}
	vs.mu.Lock()
	for _, tok := range vs.readTokens {
		if tok != "hvs.login-1" {
			t.Errorf("read with token %q, want the login token", tok)
		}
	}
	vs.mu.Unlock()
	if n := testutil.ToFloat64(h.m.met.vaultLogins.With("approle", "ok")); n != 1 {
		t.Fatalf("vault_logins_total{approle,ok} = %v", n)
	}
}

func TestVaultKubernetesLoginRereadsTheServiceAccountToken(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.k8sJWT = "jwt-one"
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	jwtPath := writeFile(t, t.TempDir(), "token", "jwt-one")
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: VaultConfig{
		Address: vs.addr(), MaxRetries: -1, Auth: VaultAuthConfig{Role: "app", TokenPath: jwtPath}}})
	h.secret(kafkaPW, "jwt-one", "jwt-two")
	h.get("kafka")

	// Kubernetes rotates the projected token; the next login must send
	// the new one.
	vs.mu.Lock()
	vs.k8sJWT = "jwt-two"
	vs.mu.Unlock()
	writeFile(t, filepath.Dir(jwtPath), "token", "jwt-two")
	vs.revokeAll()
	if got := h.get("kafka").Secret.Expose(); got != kafkaPW {
		t.Fatalf("after re-login: %q", got)
	}
	logins, _, _, _ := vs.counts()
	vs.mu.Lock()
	last := vs.lastJWT
	vs.mu.Unlock()
	if logins != 2 || last != "jwt-two" {
		t.Fatalf("logins=%d last jwt=%q, want 2 and the rotated token", logins, last)
	}
}

func TestVaultReloginAfter403(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: appRoleCfg(vs)})
	h.secret(kafkaPW, vs.secretID)
	h.get("kafka")
	vs.revokeAll() // the token expired or was revoked server-side
	if got := h.get("kafka").Secret.Expose(); got != kafkaPW {
		t.Fatalf("got %q", got)
	}
	logins, _, _, reads := vs.counts()
	if logins != 2 || reads != 3 {
		t.Fatalf("logins=%d reads=%d, want 2 logins and 3 reads (ok, 403, ok)", logins, reads)
	}
	if !strings.Contains(h.logs.String(), "logging in again") {
		t.Fatalf("re-login not logged:\n%s", h.logs)
	}
}

func TestVaultPermissionDeniedAfterReloginIsAuthError(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	vs.mu.Lock()
	vs.forbidden["secret/kafka"] = true
	vs.mu.Unlock()
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: appRoleCfg(vs)})
	h.secret(kafkaPW, vs.secretID)
	_, err := h.m.Get(context.Background(), "kafka")
	h.checkErr(err)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	var se *Error
	if !errors.As(err, &se) || se.Source != "kafka" || se.Provider != "vault" || se.Ref != "vault:secret/data/kafka#password" {
		t.Fatalf("error does not name source/provider/ref: %#v", err)
	}
	if logins, _, _, _ := vs.counts(); logins != 2 {
		t.Fatalf("logins = %d, want one re-login attempt", logins)
	}
}

func TestVaultStaticToken403IsAuthErrorWithoutLogin(t *testing.T) {
	vs := newVaultServer(t)
	vs.issue(rootTok)
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: VaultConfig{
		Address: vs.addr(), MaxRetries: -1, Auth: VaultAuthConfig{Token: secret.New(rootTok)}}})
	h.secret(kafkaPW, rootTok)
	h.get("kafka")
	vs.revokeAll()
	_, err := h.m.Get(context.Background(), "kafka")
	h.checkErr(err)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if logins, _, _, _ := vs.counts(); logins != 0 {
		t.Fatalf("a static token cannot log in; logins = %d", logins)
	}
	// A token refused from the start fails at the lookup.
	vs2 := newVaultServer(t)
	h2 := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: VaultConfig{
		Address: vs2.addr(), MaxRetries: -1, Auth: VaultAuthConfig{Token: secret.New("hvs.bogus-tok")}}})
	h2.secret("hvs.bogus-tok")
	_, err = h2.m.Get(context.Background(), "kafka")
	h2.checkErr(err)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "lookup-self") {
		t.Fatalf("err = %v, want ErrAuth from lookup-self", err)
	}
}

func TestVaultBadAppRoleCredentials(t *testing.T) {
	vs := newVaultServer(t)
	cfg := appRoleCfg(vs)
	cfg.Auth.SecretID = secret.New("wrong-secret-id-777")
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: cfg})
	h.secret("wrong-secret-id-777")
	_, err := h.m.Get(context.Background(), "kafka")
	h.checkErr(err)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
}

func TestVaultNotFoundCases(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	vs.put("secret/gone", map[string]any{"password": "old-pw-deleted"})
	vs.mu.Lock()
	vs.deleted["secret/gone"] = true
	vs.mu.Unlock()
	h := newHarness(t, Config{Cache: noCache(), Vault: appRoleCfg(vs)})
	h.secret(kafkaPW, "old-pw-deleted", vs.secretID)
	ctx := context.Background()
	for _, ref := range []string{
		"vault:secret/data/missing#password", // no such secret (404)
		"vault:secret/data/kafka#nokey",      // no such key
		"vault:secret/data/gone#password",    // latest version deleted
	} {
		_, err := h.m.Resolve(ctx, ref)
		h.checkErr(err)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", ref, err)
		}
		if err != nil && !strings.Contains(err.Error(), ref) {
			t.Errorf("%s: error does not name the reference: %v", ref, err)
		}
	}
}

func TestVaultWholeSecretAsJSONAndNonStringFields(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("kv/app/db", map[string]any{"password": kafkaPW, "port": 5432, "opts": map[string]any{"ssl": true}})
	h := newHarness(t, Config{Cache: noCache(), Vault: appRoleCfg(vs)})
	h.secret(kafkaPW)
	ctx := context.Background()
	all, err := h.m.Resolve(ctx, "vault:kv/data/app/db")
	if err != nil {
		t.Fatal(err)
	}
	if all.Expose() != `{"opts":{"ssl":true},"password":"`+kafkaPW+`","port":5432}` {
		t.Fatalf("whole secret = %s", all.Expose())
	}
	port, err := h.m.Resolve(ctx, "vault:kv/app/db#port") // without /data/: first segment is the mount
	if err != nil || port.Expose() != "5432" {
		t.Fatalf("port = %q, %v", port.Expose(), err)
	}
	opts, err := h.m.Resolve(ctx, "bao:kv/data/app/db#opts")
	if err != nil || opts.Expose() != `{"ssl":true}` {
		t.Fatalf("opts = %q, %v", opts.Expose(), err)
	}
}

func TestVaultTokenRenewedBeforeExpiry(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 30
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: appRoleCfg(vs)})
	h.secret(kafkaPW, vs.secretID)
	h.get("kafka")
	req := h.clk.waitTimers(t, 1)
	if req[0] != 20*time.Second {
		t.Fatalf("renewal scheduled after %s, want 20s (2/3 of the 30s TTL)", req[0])
	}
	h.clk.Advance(19 * time.Second)
	if _, renewals, _, _ := vs.counts(); renewals != 0 {
		t.Fatalf("renewed too early")
	}
	h.clk.Advance(time.Second)
	req = h.clk.waitTimers(t, 2) // the next renewal is scheduled after this one
	logins, renewals, _, _ := vs.counts()
	vs.mu.Lock()
	inc := vs.lastIncrement
	vs.mu.Unlock()
	if renewals != 1 || logins != 1 || inc != 30 {
		t.Fatalf("renewals=%d logins=%d increment=%d, want 1,1,30", renewals, logins, inc)
	}
	if req[1] != 20*time.Second {
		t.Fatalf("next renewal after %s, want 20s", req[1])
	}
	if n := testutil.ToFloat64(h.m.met.vaultRenewals.With("ok")); n != 1 {
		t.Fatalf("vault_token_renewals_total{ok} = %v", n)
	}
	// The renewed token still reads.
	if got := h.get("kafka").Secret.Expose(); got != kafkaPW {
		t.Fatalf("got %q", got)
	}
}

// waitUntil polls cond each time the fake clock gets a new timer.
func waitUntil(t *testing.T, c *fakeClock, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatal("condition not reached")
		}
	}
}

func TestVaultNonRenewableTokenIsReplacedByLogin(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 30
	vs.loginRenewable = false
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: appRoleCfg(vs)})
	h.secret(kafkaPW, vs.secretID)
	h.get("kafka")
	h.clk.waitTimers(t, 1)
	h.clk.Advance(20 * time.Second)
	waitUntil(t, h.clk, func() bool { l, _, _, _ := vs.counts(); return l == 2 })
	if _, renewals, _, _ := vs.counts(); renewals != 0 {
		t.Fatalf("a non-renewable token must not be renewed")
	}
}

func TestVaultRenewalCappedByMaxTTLLogsInAfresh(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 30
	vs.renewTTL = 9 // the max TTL caps the renewal
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: appRoleCfg(vs)})
	h.secret(kafkaPW, vs.secretID)
	h.get("kafka")
	h.clk.waitTimers(t, 1)
	h.clk.Advance(20 * time.Second)
	req := h.clk.waitTimers(t, 2)
	if req[1] != 6*time.Second {
		t.Fatalf("after a capped renewal the next turn is at 2/3 of 9s, got %s", req[1])
	}
	h.clk.Advance(6 * time.Second)
	waitUntil(t, h.clk, func() bool { l, _, _, _ := vs.counts(); return l == 2 })
	if _, renewals, _, _ := vs.counts(); renewals != 1 {
		t.Fatalf("renewals = %d, want 1 then a login", renewals)
	}
}

func TestVaultRenewalFailureFallsBackToLogin(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 30
	vs.renewFails = true
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: appRoleCfg(vs)})
	h.secret(kafkaPW, vs.secretID)
	h.get("kafka")
	h.clk.waitTimers(t, 1)
	h.clk.Advance(20 * time.Second)
	waitUntil(t, h.clk, func() bool { l, _, _, _ := vs.counts(); return l == 2 })
	if !strings.Contains(h.logs.String(), "renewal failed, logging in again") {
		t.Fatalf("fallback not logged:\n%s", h.logs)
	}
}

func TestVaultTLSWithCAFile(t *testing.T) {
	vs := startVaultServer(t, true)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vs.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := appRoleCfg(vs)
	cfg.CACert = ca
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: cfg})
	h.secret(kafkaPW)
	if got := h.get("kafka").Secret.Expose(); got != kafkaPW {
		t.Fatalf("got %q", got)
	}

	// Without the CA the server is not trusted.
	h2 := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: appRoleCfg(vs)})
	_, err := h2.m.Get(context.Background(), "kafka")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}

	// The CA file from the environment (VAULT_CACERT) works too.
	h3 := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: appRoleCfg(vs)},
		withEnv(map[string]string{"VAULT_CACERT": ca}))
	if got := h3.get("kafka").Secret.Expose(); got != kafkaPW {
		t.Fatalf("got %q", got)
	}

	// A CA file that is not PEM is a start-up error naming the key.
	bad := writeFile(t, t.TempDir(), "bad.pem", "not a pem")
	cfg.CACert = bad
	_, err = tryHarness(t, Config{Vault: cfg})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "secrets.vault.ca_cert" {
		t.Fatalf("err = %v, want a ConfigError on secrets.vault.ca_cert", err)
	}
}

func TestVaultSkipVerifyRefusedInProduction(t *testing.T) {
	vs := newVaultServer(t)
	cfg := appRoleCfg(vs)
	cfg.SkipVerify = true
	_, err := tryHarness(t, Config{Vault: cfg}, withAppEnv("production"))
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "secrets.vault.skip_verify") {
		t.Fatalf("err = %v", err)
	}
	// From the environment too, with the environment named by APP_ENV.
	_, err = tryHarness(t, Config{Vault: appRoleCfg(vs)}, withAppEnv(""),
		withEnv(map[string]string{"VAULT_SKIP_VERIFY": "true", "APP_ENV": "prod"}))
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
	// Outside production it is allowed, loudly.
	h := newHarness(t, Config{Vault: cfg})
	if !strings.Contains(h.logs.String(), "verification is OFF") {
		t.Fatal("skip_verify not warned about")
	}
}

func TestVaultHealth(t *testing.T) {
	vs := newVaultServer(t)
	h := newHarness(t, Config{Vault: appRoleCfg(vs), Sources: vaultSources()})
	res := h.m.CheckProviders(context.Background())
	if err, ok := res["vault"]; !ok || err != nil || len(res) != 1 {
		t.Fatalf("health: %v, want vault alone (the only provider in use)", res)
	}
	vs.setDown(true)
	if err := h.m.CheckProviders(context.Background())["vault"]; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("down vault: %v", err)
	}
}

func TestVaultConcurrentReadsShareOneFetchAndOneLogin(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	gate := make(chan struct{})
	vs.readGate, vs.readStarted = gate, make(chan struct{}, 16)
	h := newHarness(t, Config{Sources: vaultSources(), Vault: appRoleCfg(vs)})
	h.secret(kafkaPW)
	const n = 8
	joined := make(chan struct{}, n)
	h.m.mu.Lock()
	h.m.joined = joined
	h.m.mu.Unlock()
	var wg sync.WaitGroup
	results := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := h.m.Get(context.Background(), "kafka")
			if err != nil {
				results <- "error"
				return
			}
			results <- s.Expose()
		}()
	}
	<-vs.readStarted
	// Every other caller waits on the one fetch in flight.
	for range n - 1 {
		<-joined
	}
	close(gate)
	wg.Wait()
	close(results)
	for r := range results {
		if r != kafkaPW {
			t.Fatalf("result %q", r)
		}
	}
	if logins, _, _, reads := vs.counts(); logins != 1 || reads != 1 {
		t.Fatalf("logins=%d reads=%d, want 1 and 1", logins, reads)
	}
}

func TestSplitVaultPath(t *testing.T) {
	for _, c := range []struct{ in, mount, sub string }{
		{"secret/data/kafka", "secret", "kafka"},
		{"secret/data/app/db", "secret", "app/db"},
		{"kv/data/x", "kv", "x"},
		{"team/kv/data/app", "team/kv", "app"},
		{"secret/kafka", "secret", "kafka"},
		{"kafka", "secret", "kafka"},
		{"/secret/data/kafka/", "secret", "kafka"},
	} {
		m, s := splitVaultPath(c.in)
		if m != c.mount || s != c.sub {
			t.Errorf("%q: %q %q, want %q %q", c.in, m, s, c.mount, c.sub)
		}
	}
}

func TestVaultStaticTokenRenewedFromItsLookup(t *testing.T) {
	vs := newVaultServer(t)
	vs.issue(rootTok)
	vs.lookupTTL, vs.lookupRenewable = 45, true
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{Cache: noCache(), Sources: vaultSources(), Vault: VaultConfig{
		Address: vs.addr(), MaxRetries: -1, Auth: VaultAuthConfig{Token: secret.New(rootTok)}}})
	h.secret(kafkaPW, rootTok)
	h.get("kafka")
	if req := h.clk.waitTimers(t, 1); req[0] != 30*time.Second {
		t.Fatalf("renewal after %s, want 30s (2/3 of 45s)", req[0])
	}
	h.clk.Advance(30 * time.Second)
	h.clk.waitTimers(t, 2)
	vs.mu.Lock()
	inc, renewals := vs.lastIncrement, vs.renewals
	vs.mu.Unlock()
	if renewals != 1 || inc != 45 {
		t.Fatalf("renewals=%d increment=%d", renewals, inc)
	}
}
