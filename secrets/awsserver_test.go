package secrets

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// awsServer speaks the AWS JSON 1.1 protocol of Secrets Manager for
// GetSecretValue and ListSecrets: POST / with X-Amz-Target, SigV4
// Authorization, errors as {"__type": ...}.
type awsServer struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	secrets map[string]awsSecret
	denied  map[string]bool
	down    bool
	regions []string
	calls   map[string]int
	stages  []string
}

type awsSecret struct {
	str     *string
	bin     []byte
	version string
}

func newAWSServer(t *testing.T) *awsServer {
	a := &awsServer{t: t, secrets: map[string]awsSecret{}, denied: map[string]bool{}, calls: map[string]int{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.handle))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *awsServer) putString(id, value, version string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.secrets[id] = awsSecret{str: &value, version: version}
}

func (a *awsServer) putBinary(id string, value []byte, version string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.secrets[id] = awsSecret{bin: value, version: version}
}

func (a *awsServer) lastRegion() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.regions) == 0 {
		return ""
	}
	return a.regions[len(a.regions)-1]
}

func (a *awsServer) count(op string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[op]
}

var sigv4Scope = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/([^/]+)/secretsmanager/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$`)

func awsErr(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func (a *awsServer) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		awsErr(w, http.StatusNotFound, "UnknownOperationException", "bad route")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		awsErr(w, http.StatusBadRequest, "SerializationException", "content type "+ct)
		return
	}
	m := sigv4Scope.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		awsErr(w, http.StatusBadRequest, "IncompleteSignature", "bad Authorization header")
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "secretsmanager.")
	if !ok {
		awsErr(w, http.StatusBadRequest, "UnknownOperationException", target)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		awsErr(w, http.StatusBadRequest, "SerializationException", "bad body")
		return
	}
	a.mu.Lock()
	a.regions = append(a.regions, m[1])
	a.calls[op]++
	down := a.down
	a.mu.Unlock()
	if down {
		awsErr(w, http.StatusServiceUnavailable, "ServiceUnavailable", "unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch op {
	case "ListSecrets":
		_ = json.NewEncoder(w).Encode(map[string]any{"SecretList": []any{}})
	case "GetSecretValue":
		id, _ := in["SecretId"].(string)
		stage, _ := in["VersionStage"].(string)
		a.mu.Lock()
		a.stages = append(a.stages, stage)
		s, found := a.secrets[id]
		denied := a.denied[id]
		a.mu.Unlock()
		if denied {
			awsErr(w, http.StatusBadRequest, "AccessDeniedException", "User is not authorized to perform: secretsmanager:GetSecretValue")
			return
		}
		if !found {
			awsErr(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
			return
		}
		out := map[string]any{
			"ARN":  fmt.Sprintf("arn:aws:secretsmanager:%s:123456789012:secret:%s-AbCdEf", m[1], id),
			"Name": id, "VersionId": s.version, "VersionStages": []string{"AWSCURRENT"}, "CreatedDate": 1.7e9,
		}
		if s.str != nil {
			out["SecretString"] = *s.str
		} else {
			out["SecretBinary"] = s.bin // []byte encodes as base64, as the protocol wants
		}
		_ = json.NewEncoder(w).Encode(out)
	default:
		awsErr(w, http.StatusBadRequest, "UnknownOperationException", op)
	}
}
