package secret_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/keel-go/keel/secret"
	yaml "go.yaml.in/yaml/v3"
)

const plain = "hunter2-s3cr3t"

type creds struct {
	User     string        `json:"user" yaml:"user"`
	Password secret.String `json:"password" yaml:"password"`
	Nested   struct {
		Token *secret.String `json:"token" yaml:"token"`
	} `json:"nested" yaml:"nested"`
	List []secret.String          `json:"list" yaml:"list"`
	Map  map[string]secret.String `json:"map" yaml:"map"`
}

func sample() creds {
	s := secret.New(plain)
	c := creds{User: "bob", Password: s, List: []secret.String{s}, Map: map[string]secret.String{"k": s}}
	c.Nested.Token = &s
	return c
}

func TestNoPrintingPathLeaks(t *testing.T) {
	s := secret.New(plain)
	c := sample()
	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-8v"} {
		outputs["fmt "+verb] = fmt.Sprintf(verb, s)
		outputs["fmt struct "+verb] = fmt.Sprintf(verb, c)
		outputs["fmt ptr "+verb] = fmt.Sprintf(verb, &c)
	}
	outputs["String"] = s.String()
	outputs["GoString"] = s.GoString()
	outputs["Sprint"] = fmt.Sprint(s, c)
	outputs["Sprintln"] = fmt.Sprintln(s, c)
	outputs["error"] = fmt.Errorf("connect failed with %v: %w", s, errors.New("x")).Error()
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(j)
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs["yaml"] = string(y)
	type wrapped struct{ P secret.String }
	x, err := xml.Marshal(wrapped{s})
	if err != nil {
		t.Fatal(err)
	}
	outputs["xml"] = string(x)
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("m", "pw", s, "creds", c, slog.Group("g", "pw", s))
	}
	outputs["slog"] = buf.String()
	for name, out := range outputs {
		if strings.Contains(out, plain) {
			t.Errorf("%s leaked the secret: %s", name, out)
		}
	}
	if !strings.Contains(outputs["json"], secret.Redacted) || !strings.Contains(outputs["slog"], secret.Redacted) {
		t.Fatalf("redaction marker missing: %s / %s", outputs["json"], outputs["slog"])
	}
	if outputs["fmt %q"] != `"[REDACTED]"` {
		t.Errorf("%%q = %s", outputs["fmt %q"])
	}
}

func TestUnmarshalReadsRealValue(t *testing.T) {
	var c creds
	if err := json.Unmarshal([]byte(`{"password":"p1","nested":{"token":"t1"},"list":["l1"],"map":{"k":"m1"}}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Password.Expose() != "p1" || c.Nested.Token.Expose() != "t1" || c.List[0].Expose() != "l1" || c.Map["k"].Expose() != "m1" {
		t.Fatalf("json unmarshal: %q %q", c.Password.Expose(), c.Nested.Token.Expose())
	}
	var y creds
	if err := yaml.Unmarshal([]byte("password: p2\nnested:\n  token: t2\n"), &y); err != nil {
		t.Fatal(err)
	}
	if y.Password.Expose() != "p2" || y.Nested.Token.Expose() != "t2" {
		t.Fatalf("yaml unmarshal: %q", y.Password.Expose())
	}
	var s secret.String
	if err := s.UnmarshalText([]byte("p3")); err != nil || s.Expose() != "p3" {
		t.Fatalf("text unmarshal: %v %q", err, s.Expose())
	}
	if err := json.Unmarshal([]byte(`123`), &s); err == nil {
		t.Fatal("a JSON number was accepted as a secret")
	} else if strings.Contains(err.Error(), "123") {
		t.Fatalf("error echoes the input: %v", err)
	}
	if err := json.Unmarshal([]byte(`null`), &s); err != nil || !s.IsZero() {
		t.Fatalf("null: %v", err)
	}
}

func TestRevealJSONRoundTripsConcurrently(t *testing.T) {
	c := sample()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			b, err := secret.RevealJSON(c)
			if err != nil {
				t.Error(err)
				return
			}
			var back creds
			if err := json.Unmarshal(b, &back); err != nil {
				t.Error(err)
				return
			}
			if back.Password.Expose() != plain || back.Nested.Token.Expose() != plain || back.Map["k"].Expose() != plain {
				t.Errorf("round trip lost the value: %s", b)
			}
		}()
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(c)
			if strings.Contains(string(b), plain) {
				t.Errorf("plain marshal leaked while another goroutine revealed: %s", b)
			}
		}()
	}
	wg.Wait()
}

func TestEqualAndLen(t *testing.T) {
	a, b := secret.New("x"), secret.New("x")
	if !a.Equal(b) || a.Len() != 1 || a.IsZero() || !(secret.String{}).IsZero() {
		t.Fatal("Equal/Len/IsZero wrong")
	}
}

func ExampleString() {
	type DB struct {
		Host     string
		Password secret.String
	}
	db := DB{Host: "db.internal", Password: secret.New("hunter2")}
	fmt.Printf("%+v\n", db)
	fmt.Println(len(db.Password.Expose()))
	// Output:
	// {Host:db.internal Password:[REDACTED]}
	// 7
}
