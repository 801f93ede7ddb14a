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
	if a.Equal(secret.New("y")) || a.Equal(secret.String{}) {
		t.Fatal("Equal matched different values")
	}
	if c := a; c != a {
		t.Fatal("a copy is not == to its original")
	}
	if secret.New("") != (secret.String{}) {
		t.Fatal(`New("") is not the zero String`)
	}
}

// TestZeroValueUsable: the zero String reads as empty everywhere.
func TestZeroValueUsable(t *testing.T) {
	var z secret.String
	if z.Expose() != "" || z.Len() != 0 || !z.IsZero() || !z.Equal(secret.New("")) || z.String() != secret.Redacted {
		t.Fatalf("zero value: %q %d %v", z.Expose(), z.Len(), z.IsZero())
	}
	b, err := json.Marshal(struct{ S secret.String }{})
	if err != nil || string(b) != `{"S":"[REDACTED]"}` {
		t.Fatalf("zero value JSON: %s %v", b, err)
	}
	if r, err := secret.RevealJSON(struct{ S secret.String }{}); err != nil || string(r) != `{"S":""}` {
		t.Fatalf("zero value revealed: %s %v", r, err)
	}
}

// TestUnmarshalLeavesCopiesAlone: unmarshalling into a String gives it a
// new value and never changes a copy taken before.
func TestUnmarshalLeavesCopiesAlone(t *testing.T) {
	a := secret.New("before")
	b := a
	if err := b.UnmarshalText([]byte("after-text")); err != nil || b.Expose() != "after-text" {
		t.Fatalf("UnmarshalText: %v %q", err, b.Expose())
	}
	if err := json.Unmarshal([]byte(`"after\/json"`), &b); err != nil || b.Expose() != "after/json" {
		t.Fatalf("UnmarshalJSON: %v %q", err, b.Expose())
	}
	if err := yaml.Unmarshal([]byte("after-yaml"), &b); err != nil || b.Expose() != "after-yaml" {
		t.Fatalf("UnmarshalYAML: %v %q", err, b.Expose())
	}
	if a.Expose() != "before" {
		t.Fatalf("unmarshalling into a copy changed the original to %q", a.Expose())
	}
}

type inner struct {
	pw    secret.String
	ptr   *secret.String
	list  []secret.String
	byKey map[string]secret.String
	arr   [1]secret.String
}

type outer struct {
	Name string
	in   inner
	deep struct{ in inner }
	Pub  inner
}

// TestUnexportedFieldsDoNotLeak: fmt cannot call a method on a value in
// an unexported field and prints its fields by reflection instead; the
// value must not be among them, at any depth, through a pointer, a slice,
// a map or an array.
func TestUnexportedFieldsDoNotLeak(t *testing.T) {
	s := secret.New(plain)
	in := inner{pw: s, ptr: &s, list: []secret.String{s}, byKey: map[string]secret.String{"k": s}, arr: [1]secret.String{s}}
	o := outer{Name: "visible-name", in: in, Pub: in}
	o.deep.in = in
	hexPlain := fmt.Sprintf("%x", plain)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%+q"} {
		for name, v := range map[string]any{"struct": o, "pointer": &o, "inner": in, "slice": []outer{o}, "map": map[string]outer{"o": o}} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, plain) || strings.Contains(strings.ToLower(out), hexPlain) {
				t.Errorf("%s %s leaked the secret: %s", verb, name, out)
			}
			if name == "struct" && verb != "%x" && verb != "%X" && verb != "%d" && !strings.Contains(out, "visible-name") {
				t.Errorf("%s %s lost the rest of the struct: %s", verb, name, out)
			}
		}
	}
	if !o.in.pw.Equal(s) || o.deep.in.list[0].Expose() != plain {
		t.Fatal("the value was lost")
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
