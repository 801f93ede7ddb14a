package secrets

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-go/keel/secret"
)

const awsSecretKey = "aws-secret-access-key-K9w"

// isolateAWS keeps the SDK away from the machine's AWS files and profile.
func isolateAWS(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"} {
		t.Setenv(k, "")
	}
}

func awsCfg(as *awsServer) AWSConfig {
	return AWSConfig{EndpointURL: as.srv.URL, Region: "eu-west-1", AccessKeyID: "AKIDTEST",
		SecretAccessKey: secret.New(awsSecretKey), MaxAttempts: 1}
}

func TestAWSStringBinaryAndJSONKey(t *testing.T) {
	isolateAWS(t)
	as := newAWSServer(t)
	as.putString("prod/db", `{"password":"db-pw-Hq7","port":5432,"tls":{"ca":"x"}}`, "v1")
	as.putString("plain", "plain-token-Jj2", "v1")
	as.putBinary("keystore", []byte{0, 1, 2, 0xff, 'k'}, "b1")
	h := newHarness(t, Config{Cache: noCache(), AWS: awsCfg(as), Sources: map[string]SourceConfig{
		"db": {Ref: "aws:prod/db#password"},
	}})
	h.secret("db-pw-Hq7", "plain-token-Jj2", awsSecretKey)
	ctx := context.Background()

	v := h.get("db")
	if v.Secret.Expose() != "db-pw-Hq7" || v.Version != "v1" || v.Provider != "aws" {
		t.Fatalf("db = %+v (version %q)", v, v.Version)
	}
	if s, err := h.m.Resolve(ctx, "aws:plain"); err != nil || s.Expose() != "plain-token-Jj2" {
		t.Fatalf("plain = %q, %v", s.Expose(), err)
	}
	if s, err := h.m.Resolve(ctx, "aws:keystore"); err != nil || s.Expose() != "\x00\x01\x02\xffk" {
		t.Fatalf("binary = %q, %v", s.Expose(), err)
	}
	if s, err := h.m.Resolve(ctx, "aws:prod/db#port"); err != nil || s.Expose() != "5432" {
		t.Fatalf("port = %q, %v", s.Expose(), err)
	}
	if s, err := h.m.Resolve(ctx, "aws:prod/db#tls"); err != nil || s.Expose() != `{"ca":"x"}` {
		t.Fatalf("tls = %q, %v", s.Expose(), err)
	}
	if as.lastRegion() != "eu-west-1" {
		t.Fatalf("signed for region %q", as.lastRegion())
	}
	// A key asked of a secret that is not JSON: no byte of it in the error.
	_, err := h.m.Resolve(ctx, "aws:plain#password")
	h.checkErr(err)
	if !errors.Is(err, ErrInvalidData) || strings.Contains(err.Error(), "invalid character") {
		t.Fatalf("err = %v", err)
	}
	_, err = h.m.Resolve(ctx, "aws:prod/db#nokey")
	if !errors.Is(h.checkErr(err), ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

func TestAWSNotFoundAndAccessDenied(t *testing.T) {
	isolateAWS(t)
	as := newAWSServer(t)
	as.putString("locked", "locked-pw-Pp0", "v1")
	as.mu.Lock()
	as.denied["locked"] = true
	as.mu.Unlock()
	h := newHarness(t, Config{Cache: noCache(), AWS: awsCfg(as)})
	h.secret("locked-pw-Pp0", awsSecretKey)
	ctx := context.Background()
	_, err := h.m.Resolve(ctx, "aws:nope")
	h.checkErr(err)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "ResourceNotFoundException") || !strings.Contains(err.Error(), "aws:nope") {
		t.Fatalf("not found: %v", err)
	}
	_, err = h.m.Resolve(ctx, "aws:locked")
	h.checkErr(err)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("denied: %v", err)
	}
	if as.count("GetSecretValue") != 2 {
		t.Fatalf("GetSecretValue calls = %d (max_attempts 1 must not retry)", as.count("GetSecretValue"))
	}
	if err := h.m.CheckProviders(ctx)["aws"]; err != nil || as.count("ListSecrets") != 1 {
		t.Fatalf("health: %v, ListSecrets calls %d", err, as.count("ListSecrets"))
	}
}

func TestAWSRegionAndEndpointFromEnv(t *testing.T) {
	isolateAWS(t)
	as := newAWSServer(t)
	as.putString("s", "env-routed-Aa1", "v1")
	cfg := awsCfg(as)
	cfg.Region, cfg.EndpointURL = "", ""
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AWS_ENDPOINT_URL": as.srv.URL, "AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-west-2"}, "ap-south-1"},
		{map[string]string{"AWS_ENDPOINT_URL": as.srv.URL, "AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2"},
		{map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": as.srv.URL, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, DefaultAWSRegion},
	} {
		h := newHarness(t, Config{Cache: noCache(), AWS: cfg}, withEnv(c.env))
		h.secret("env-routed-Aa1")
		s, err := h.m.Resolve(context.Background(), "aws:s")
		if err != nil || s.Expose() != "env-routed-Aa1" {
			t.Fatalf("%v: %q, %v", c.env, s.Expose(), err)
		}
		if as.lastRegion() != c.want {
			t.Fatalf("%v: region %q, want %q", c.env, as.lastRegion(), c.want)
		}
	}
	// Configuration beats the environment.
	cfg.Region, cfg.EndpointURL = "ca-central-1", as.srv.URL
	h := newHarness(t, Config{Cache: noCache(), AWS: cfg}, withEnv(map[string]string{"AWS_REGION": "ap-south-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}))
	if _, err := h.m.Resolve(context.Background(), "aws:s"); err != nil || as.lastRegion() != "ca-central-1" {
		t.Fatalf("config region: %q, %v", as.lastRegion(), err)
	}
}

func TestAWSVersionStage(t *testing.T) {
	isolateAWS(t)
	as := newAWSServer(t)
	as.putString("s", "staged-Zz9", "v1")
	cfg := awsCfg(as)
	cfg.VersionStage = "AWSPREVIOUS"
	h := newHarness(t, Config{Cache: noCache(), AWS: cfg})
	h.secret("staged-Zz9")
	if _, err := h.m.Resolve(context.Background(), "aws:s"); err != nil {
		t.Fatal(err)
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.stages[0] != "AWSPREVIOUS" {
		t.Fatalf("stage sent: %q", as.stages[0])
	}
}

func TestAWSVersionChangeRaisesRotationEvent(t *testing.T) {
	isolateAWS(t)
	as := newAWSServer(t)
	as.putString("prod/db", `{"password":"pw-one-Rr1"}`, "ver-aaa")
	h := newHarness(t, Config{AWS: awsCfg(as), Sources: map[string]SourceConfig{"db": {Ref: "aws:prod/db#password"}}})
	h.secret("pw-one-Rr1", "pw-two-Rr2")
	ch, cancel := h.m.Subscribe(4)
	defer cancel()
	h.get("db")
	as.putString("prod/db", `{"password":"pw-two-Rr2"}`, "ver-bbb")
	if err := h.m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := <-ch
	if ev.OldVersion != "ver-aaa" || ev.NewVersion != "ver-bbb" || ev.Provider != "aws" || ev.Ref != "aws:prod/db#password" || len(ev.Sources) != 1 || ev.Sources[0] != "db" {
		t.Fatalf("event %+v", ev)
	}
	if got := h.get("db").Secret.Expose(); got != "pw-two-Rr2" {
		t.Fatalf("after rotation: %q", got)
	}
}

func TestResolveAWSEnv(t *testing.T) {
	got := resolveAWS(AWSConfig{}, envMap(map[string]string{"AWS_DEFAULT_REGION": "us-west-2", "AWS_ENDPOINT_URL": "http://localstack:4566"}))
	if got.Region != "us-west-2" || got.EndpointURL != "http://localstack:4566" {
		t.Fatalf("%+v", got)
	}
	got = resolveAWS(AWSConfig{Region: "eu-west-1"}, envMap(map[string]string{"AWS_REGION": "x"}))
	if got.Region != "eu-west-1" {
		t.Fatalf("config must win: %+v", got)
	}
	got = resolveAWS(AWSConfig{}, envMap(map[string]string{"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-east-2"}))
	if got.Region != "us-east-2" {
		t.Fatalf("empty AWS_REGION counts as unset: %+v", got)
	}
}
