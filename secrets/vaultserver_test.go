package secrets

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// vaultServer speaks the parts of the Vault HTTP API the provider uses:
// KV v2 reads with versions, AppRole and Kubernetes login, token
// lookup-self and renew-self, sys/health. Tokens are issued and revoked by
// the server, so a revoked token gets 403 just as from a real Vault.
type vaultServer struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	tokens    map[string]bool
	next      int
	kv        map[string][]map[string]any // "mount/path" -> versions (1-based)
	deleted   map[string]bool             // "mount/path" whose latest version is deleted
	forbidden map[string]bool             // "mount/path" that every token is denied
	down      bool                        // answer 503 everywhere

	roleID, secretID string
	k8sRole, k8sJWT  string
	loginTTL         int
	loginRenewable   bool
	renewTTL         int // 0: grant the increment asked for
	renewFails       bool
	lookupTTL        int
	lookupRenewable  bool

	logins, renewals, lookups, reads int
	lastJWT                          string
	lastIncrement                    int
	namespaces                       []string
	readTokens                       []string
	readGate                         chan struct{} // when set, reads wait on it
	readStarted                      chan struct{}
}

func newVaultServer(t *testing.T) *vaultServer { return startVaultServer(t, false) }

func startVaultServer(t *testing.T, useTLS bool) *vaultServer {
	v := &vaultServer{
		t: t, tokens: map[string]bool{}, kv: map[string][]map[string]any{},
		deleted: map[string]bool{}, forbidden: map[string]bool{},
		roleID: "role-1", secretID: "approle-secret-id-XYZ",
		k8sRole: "app", loginTTL: 30, loginRenewable: true,
	}
	if useTLS {
		v.srv = httptest.NewUnstartedServer(http.HandlerFunc(v.handle))
		v.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-CA case logs handshake errors
		v.srv.StartTLS()
	} else {
		v.srv = httptest.NewServer(http.HandlerFunc(v.handle))
	}
	t.Cleanup(v.srv.Close)
	return v
}

func (v *vaultServer) addr() string { return v.srv.URL }

// put stores a new version of a KV v2 secret.
func (v *vaultServer) put(mountPath string, data map[string]any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.kv[mountPath] = append(v.kv[mountPath], data)
	delete(v.deleted, mountPath)
}

// issue creates a valid token.
func (v *vaultServer) issue(tok string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.tokens[tok] = true
}

// revokeAll invalidates every token (as if they expired).
func (v *vaultServer) revokeAll() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.tokens)
}

func (v *vaultServer) setDown(down bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.down = down
}

func (v *vaultServer) counts() (logins, renewals, lookups, reads int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.logins, v.renewals, v.lookups, v.reads
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func vaultErr(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, map[string]any{"errors": msgs})
}

func (v *vaultServer) authBody(tok string, ttl int, renewable bool) map[string]any {
	return map[string]any{"auth": map[string]any{
		"client_token": tok, "accessor": "acc-" + tok, "policies": []string{"default"},
		"token_policies": []string{"default"}, "lease_duration": ttl, "renewable": renewable,
	}}
}

func (v *vaultServer) handle(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Vault-Request") != "true" {
		vaultErr(w, http.StatusBadRequest, "missing X-Vault-Request header")
		return
	}
	v.mu.Lock()
	if ns := r.Header.Get("X-Vault-Namespace"); ns != "" {
		v.namespaces = append(v.namespaces, ns)
	}
	if v.down {
		v.mu.Unlock()
		vaultErr(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	v.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			vaultErr(w, http.StatusBadRequest, "bad json")
			return
		}
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	tok := r.Header.Get("X-Vault-Token")

	switch {
	case path == "sys/health" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"initialized": true, "sealed": false, "standby": false, "version": "1.15.0", "cluster_name": "test"})
		return
	case strings.HasSuffix(path, "/login") && strings.HasPrefix(path, "auth/") && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		mount := strings.TrimSuffix(strings.TrimPrefix(path, "auth/"), "/login")
		v.mu.Lock()
		defer v.mu.Unlock()
		switch mount {
		case "approle", "custom-approle":
			if in["role_id"] != v.roleID || in["secret_id"] != v.secretID {
				vaultErr(w, http.StatusBadRequest, "invalid role or secret ID")
				return
			}
		case "kubernetes":
			v.lastJWT, _ = in["jwt"].(string)
			if in["role"] != v.k8sRole || v.lastJWT != v.k8sJWT {
				vaultErr(w, http.StatusForbidden, "permission denied")
				return
			}
		default:
			vaultErr(w, http.StatusBadRequest, "no handler for route")
			return
		}
		v.logins++
		v.next++
		nt := fmt.Sprintf("hvs.login-%d", v.next)
		v.tokens[nt] = true
		writeJSON(w, http.StatusOK, v.authBody(nt, v.loginTTL, v.loginRenewable))
		return
	case path == "auth/token/lookup-self" && r.Method == http.MethodGet:
		v.mu.Lock()
		defer v.mu.Unlock()
		v.lookups++
		if !v.tokens[tok] {
			vaultErr(w, http.StatusForbidden, "permission denied")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"id": tok, "ttl": v.lookupTTL, "renewable": v.lookupRenewable, "policies": []string{"default"}}})
		return
	case path == "auth/token/renew-self" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		v.mu.Lock()
		defer v.mu.Unlock()
		v.renewals++
		if !v.tokens[tok] || v.renewFails {
			vaultErr(w, http.StatusForbidden, "permission denied")
			return
		}
		inc := 0
		if n, ok := in["increment"].(float64); ok {
			inc = int(n)
		}
		v.lastIncrement = inc
		ttl := inc
		if v.renewTTL > 0 {
			ttl = v.renewTTL
		}
		writeJSON(w, http.StatusOK, v.authBody(tok, ttl, true))
		return
	}

	// KV v2 read: <mount>/data/<path>
	i := strings.Index(path, "/data/")
	if i <= 0 || r.Method != http.MethodGet {
		vaultErr(w, http.StatusNotFound)
		return
	}
	key := path[:i] + "/" + path[i+len("/data/"):]
	v.mu.Lock()
	gate, started := v.readGate, v.readStarted
	v.reads++
	v.readTokens = append(v.readTokens, tok)
	valid := v.tokens[tok]
	forbidden := v.forbidden[key]
	versions := v.kv[key]
	deleted := v.deleted[key]
	v.mu.Unlock()
	if started != nil {
		started <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	if !valid || forbidden {
		vaultErr(w, http.StatusForbidden, "permission denied")
		return
	}
	if len(versions) == 0 {
		vaultErr(w, http.StatusNotFound)
		return
	}
	meta := map[string]any{
		"created_time":    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339Nano),
		"custom_metadata": nil, "deletion_time": "", "destroyed": false, "version": len(versions),
	}
	if deleted {
		meta["deletion_time"] = time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).Format(time.RFC3339Nano)
		writeJSON(w, http.StatusNotFound, map[string]any{"data": map[string]any{"data": nil, "metadata": meta}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0,
		"data": map[string]any{"data": versions[len(versions)-1], "metadata": meta},
	})
}
