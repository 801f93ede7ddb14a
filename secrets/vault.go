package secrets

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// vaultMinWait is the shortest wait the token renewal schedules, so a
// token with a tiny TTL cannot spin the loop.
const vaultMinWait = time.Second

// vaultProvider reads Vault / OpenBao KV v2 secrets through one client
// that logs in once, renews its token at two thirds of its TTL and logs in
// again when the server answers 403.
type vaultProvider struct {
	cfg       resolvedVault
	client    *vault.Client // carries the token; used for reads and renewals
	loginCli  *vault.Client // never carries a token; used for logins
	transport *http.Transport
	clock     clock
	log       *slog.Logger
	met       *metricSet

	mu        sync.Mutex // serialises authentication; guards the fields below
	gen       uint64     // incremented at every new token
	authed    bool
	ttl       time.Duration
	renewable bool
	obtained  time.Time
	increment time.Duration
	closed    bool
	looping   bool

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	bg       context.Context
	bgCancel context.CancelFunc
}

func newVaultProvider(r resolvedVault, clk clock, log *slog.Logger, met *metricSet) (*vaultProvider, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: r.SkipVerify} //nolint:gosec // refused in production by New
	if r.CACert != "" {
		pem, err := os.ReadFile(r.CACert)
		if err != nil {
			return nil, &ConfigError{Key: Section + ".vault.ca_cert", Msg: fmt.Sprintf("vault CA file: %v; set secrets.vault.ca_cert or VAULT_CACERT to a readable PEM file", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Key: Section + ".vault.ca_cert", Msg: fmt.Sprintf("vault CA file %s holds no PEM certificate", r.CACert)}
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	hc := &http.Client{
		Transport: tr,
		// The Vault client follows redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	retries := r.MaxRetries
	if retries < 0 {
		retries = 0
	}
	mk := func() (*vault.Client, error) {
		c, err := vault.NewClient(&vault.Config{
			Address:      r.Address,
			HttpClient:   hc,
			Timeout:      r.Timeout,
			MaxRetries:   retries,
			MinRetryWait: 250 * time.Millisecond,
			MaxRetryWait: 1500 * time.Millisecond,
		})
		if err != nil {
			return nil, &ConfigError{Key: Section + ".vault", Msg: fmt.Sprintf("vault client for %s: %v", r.Address, err)}
		}
		// NewClient picks VAULT_TOKEN and VAULT_NAMESPACE from the
		// process environment; the resolved configuration decides.
		c.ClearToken()
		c.ClearNamespace()
		if r.Namespace != "" {
			c.SetNamespace(r.Namespace)
		}
		return c, nil
	}
	client, err := mk()
	if err != nil {
		return nil, err
	}
	loginCli, err := mk()
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	return &vaultProvider{
		cfg: r, client: client, loginCli: loginCli, transport: tr,
		clock: clk, log: log, met: met,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		bg: bg, bgCancel: cancel,
	}, nil
}

// Name returns "vault".
func (p *vaultProvider) Name() string { return ProviderVault }

// canLogin reports whether the auth method can get a new token by itself.
func (p *vaultProvider) canLogin() bool { return p.cfg.Auth.Method != AuthToken }

// splitVaultPath splits a KV v2 path into mount and secret path:
// "secret/data/app/db" and "secret/app/db" are mount "secret", path
// "app/db"; "team/kv/data/app" is mount "team/kv".
func splitVaultPath(p string) (mount, sub string) {
	p = strings.Trim(p, "/")
	if i := strings.Index(p, "/data/"); i > 0 {
		return p[:i], p[i+len("/data/"):]
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		return p[:i], p[i+1:]
	}
	return "secret", p
}

// Fetch reads the latest version of the KV v2 secret at path. Without a
// key the whole data map is returned as JSON.
func (p *vaultProvider) Fetch(ctx context.Context, path, key string) (Fetched, error) {
	mount, sub := splitVaultPath(path)
	if sub == "" {
		return Fetched{}, fmt.Errorf("%w: vault path %q names no secret under mount %s", ErrInvalidRef, path, mount)
	}
	gen, err := p.ensureAuth(ctx)
	if err != nil {
		return Fetched{}, err
	}
	kv, err := p.client.KVv2(mount).Get(ctx, sub)
	if statusOf(err) == http.StatusForbidden && p.canLogin() {
		p.log.Info("secrets: vault answered 403, logging in again", "mount", mount, "path", sub, "method", p.cfg.Auth.Method)
		if lerr := p.relogin(ctx, gen); lerr != nil {
			return Fetched{}, lerr
		}
		kv, err = p.client.KVv2(mount).Get(ctx, sub)
	}
	if err != nil {
		return Fetched{}, p.classify(err, "reading "+mount+"/data/"+sub)
	}
	version := ""
	if kv.VersionMetadata != nil {
		version = strconv.Itoa(kv.VersionMetadata.Version)
	}
	if kv.Data == nil {
		return Fetched{}, fmt.Errorf("%w: vault secret %s/data/%s version %s is deleted or destroyed", ErrNotFound, mount, sub, version)
	}
	var data []byte
	if key == "" {
		if data, err = json.Marshal(kv.Data); err != nil {
			return Fetched{}, fmt.Errorf("%w: vault secret %s/data/%s cannot be encoded as JSON", ErrInvalidData, mount, sub)
		}
	} else {
		v, ok := kv.Data[key]
		if !ok {
			return Fetched{}, fmt.Errorf("%w: key %q is not in vault secret %s/data/%s (version %s)", ErrNotFound, key, mount, sub, version)
		}
		switch x := v.(type) {
		case string:
			data = []byte(x)
		case nil:
			data = nil
		default:
			if data, err = json.Marshal(x); err != nil {
				return Fetched{}, fmt.Errorf("%w: key %q of vault secret %s/data/%s cannot be encoded as JSON", ErrInvalidData, key, mount, sub)
			}
		}
	}
	return Fetched{Data: data, Version: version}, nil
}

// Health asks sys/health.
func (p *vaultProvider) Health(ctx context.Context) error {
	h, err := p.client.Sys().HealthWithContext(ctx)
	if err != nil {
		return p.classify(err, "sys/health")
	}
	switch {
	case !h.Initialized:
		return fmt.Errorf("%w: vault at %s is not initialised", ErrUnavailable, p.cfg.Address)
	case h.Sealed:
		return fmt.Errorf("%w: vault at %s is sealed", ErrUnavailable, p.cfg.Address)
	}
	return nil
}

// Close stops the token renewal and closes idle connections.
func (p *vaultProvider) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	looping := p.looping
	p.mu.Unlock()
	close(p.stop)
	p.bgCancel()
	var err error
	if looping {
		select {
		case <-p.done:
		case <-ctx.Done():
			err = fmt.Errorf("secrets: vault token renewal did not stop: %w", ctx.Err())
		}
	}
	p.transport.CloseIdleConnections()
	return err
}

// ensureAuth authenticates once and returns the token generation.
func (p *vaultProvider) ensureAuth(ctx context.Context) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, ErrClosed
	}
	if !p.authed {
		if err := p.authenticateLocked(ctx); err != nil {
			return 0, err
		}
	}
	return p.gen, nil
}

// relogin gets a new token unless another caller already replaced the one
// of generation seen.
func (p *vaultProvider) relogin(ctx context.Context, seen uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.gen != seen && p.authed {
		return nil
	}
	p.authed = false
	return p.authenticateLocked(ctx)
}

// authenticateLocked sets a token on the client: the configured one
// (looked up for its TTL) or a new one from a login. p.mu is held.
func (p *vaultProvider) authenticateLocked(ctx context.Context) error {
	a := p.cfg.Auth
	var (
		ttl       time.Duration
		renewable bool
	)
	switch a.Method {
	case AuthToken:
		p.client.SetToken(a.Token.Expose())
		s, err := p.client.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			p.client.ClearToken()
			p.met.vaultLogin(p.cfg.Auth.Method, false)
			return p.classify(err, "looking up the configured token (auth/token/lookup-self)")
		}
		if s != nil {
			ttl, _ = s.TokenTTL()
			renewable, _ = s.TokenIsRenewable()
		}
	case AuthAppRole, AuthKubernetes:
		var (
			method vault.AuthMethod
			err    error
		)
		if a.Method == AuthAppRole {
			method, err = approle.NewAppRoleAuth(a.RoleID, &approle.SecretID{FromString: a.SecretID.Expose()}, approle.WithMountPath(a.Mount))
		} else {
			// Built at every login: it reads the service account token
			// file, which Kubernetes rotates.
			method, err = kubernetes.NewKubernetesAuth(a.Role, kubernetes.WithServiceAccountTokenPath(a.TokenPath), kubernetes.WithMountPath(a.Mount))
		}
		if err != nil {
			p.met.vaultLogin(a.Method, false)
			return fmt.Errorf("%w: vault %s login: %v", ErrAuth, a.Method, err)
		}
		s, err := method.Login(ctx, p.loginCli)
		if err != nil {
			p.met.vaultLogin(a.Method, false)
			return p.classify(err, a.Method+" login at auth/"+a.Mount+"/login")
		}
		if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
			p.met.vaultLogin(a.Method, false)
			return fmt.Errorf("%w: vault %s login at auth/%s/login returned no token", ErrAuth, a.Method, a.Mount)
		}
		p.client.SetToken(s.Auth.ClientToken)
		ttl = time.Duration(s.Auth.LeaseDuration) * time.Second
		renewable = s.Auth.Renewable
	default:
		return fmt.Errorf("%w: vault auth method %q", ErrProviderNotConfigured, a.Method)
	}
	p.met.vaultLogin(a.Method, true)
	p.gen++
	p.authed = true
	p.ttl, p.renewable, p.increment = ttl, renewable, ttl
	p.obtained = p.clock.Now()
	p.log.Info("secrets: vault authenticated", "method", a.Method, "address", p.cfg.Address,
		"namespace", p.cfg.Namespace, "ttl", ttl.String(), "renewable", renewable)
	if !p.looping {
		p.looping = true
		go p.renewLoop()
	} else {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// tokenState is a snapshot of the token's schedule.
type tokenState struct {
	gen       uint64
	authed    bool
	ttl       time.Duration
	renewable bool
	obtained  time.Time
	increment time.Duration
}

func (p *vaultProvider) state() tokenState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return tokenState{p.gen, p.authed, p.ttl, p.renewable, p.obtained, p.increment}
}

// renewLoop renews the token at two thirds of its TTL, or logs in again
// when it cannot be renewed, until Close.
func (p *vaultProvider) renewLoop() {
	defer close(p.done)
	var retry time.Duration
	for {
		st := p.state()
		var tc <-chan time.Time
		var t timer
		if st.authed && st.ttl > 0 {
			wait := retry
			if wait == 0 {
				wait = st.obtained.Add(st.ttl * 2 / 3).Sub(p.clock.Now())
			}
			wait = max(wait, vaultMinWait)
			t = p.clock.NewTimer(wait)
			tc = t.C()
		}
		select {
		case <-p.stop:
			if t != nil {
				t.Stop()
			}
			return
		case <-p.kick:
			if t != nil {
				t.Stop()
			}
			retry = 0
			continue
		case <-tc:
		}
		if err := p.renewOrLogin(st); err != nil {
			remaining := st.obtained.Add(st.ttl).Sub(p.clock.Now())
			retry = min(max(remaining/3, vaultMinWait), time.Minute)
			p.log.Warn("secrets: vault token renewal failed", "method", p.cfg.Auth.Method,
				"retry_in", retry.String(), "error", err.Error())
			continue
		}
		retry = 0
	}
}

// renewOrLogin renews the token of st, or logs in again when it is not
// renewable (or renewal fails and the method can log in).
func (p *vaultProvider) renewOrLogin(st tokenState) error {
	ctx, cancel := context.WithTimeout(p.bg, p.cfg.Timeout)
	defer cancel()
	if st.renewable {
		s, err := p.client.Auth().Token().RenewSelfWithContext(ctx, int(st.increment/time.Second))
		if err == nil && s != nil && s.Auth != nil {
			p.met.vaultRenewal(true)
			ttl := time.Duration(s.Auth.LeaseDuration) * time.Second
			p.mu.Lock()
			if p.gen == st.gen {
				p.ttl, p.obtained = ttl, p.clock.Now()
				p.renewable = s.Auth.Renewable
				if ttl < st.increment && p.canLogin() {
					// Capped by the max TTL: the next turn logs in
					// afresh instead of renewing a dying token.
					p.renewable = false
				}
			}
			p.mu.Unlock()
			p.log.Debug("secrets: vault token renewed", "ttl", ttl.String())
			return nil
		}
		p.met.vaultRenewal(false)
		if err == nil {
			err = errors.New("renew-self returned no auth data")
		}
		if !p.canLogin() {
			return p.classify(err, "renewing the token (auth/token/renew-self)")
		}
		p.log.Warn("secrets: vault token renewal failed, logging in again", "method", p.cfg.Auth.Method, "error", err.Error())
	}
	if !p.canLogin() {
		p.mu.Lock()
		if p.gen == st.gen {
			p.ttl = 0 // nothing more to schedule
		}
		p.mu.Unlock()
		p.log.Warn("secrets: the vault token is not renewable and will expire; replace it", "expires_at", st.obtained.Add(st.ttl).UTC().Format(time.RFC3339))
		return nil
	}
	return p.relogin(ctx, st.gen)
}

// statusOf returns the HTTP status of a Vault response error, or 0.
func statusOf(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// classify wraps a Vault client error with the sentinel it stands for.
func (p *vaultProvider) classify(err error, what string) error {
	var sentinel error
	switch st := statusOf(err); {
	case errors.Is(err, vault.ErrSecretNotFound), st == http.StatusNotFound:
		sentinel = ErrNotFound
	case st == http.StatusForbidden, st == http.StatusUnauthorized:
		sentinel = ErrAuth
	case st == http.StatusBadRequest && strings.Contains(what, "login"):
		sentinel = ErrAuth
	case st >= 400 && st < 500 && st != http.StatusTooManyRequests:
		sentinel = ErrInvalidData
	default:
		sentinel = ErrUnavailable
	}
	return fmt.Errorf("%w: vault %s: %v", sentinel, what, err)
}
