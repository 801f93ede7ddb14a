package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"unsafe"
)

// parityJSON and parityMsgPack encode the same object. The MsgPack side
// uses the encodings a producer would pick: compact ints, float64, uint64.
const parityJSON = `{"s":"text","i":42,"neg":-7,"zero":0,"f":12.5,"fi":3.0,"exp":1e3,
"t":true,"fl":false,"nul":null,"obj":{"a":1},"arr":[1,"x"],"big":18446744073709551615,
"maxi":9223372036854775807,"mini":-9223372036854775808,"uni":"héllo ✓"}`

func parityMsgPack(t *testing.T) []byte {
	return mustMsgPack(t, map[string]any{
		"s": "text", "i": int8(42), "neg": int8(-7), "zero": uint8(0), "f": 12.5, "fi": 3.0, "exp": 1e3,
		"t": true, "fl": false, "nul": nil, "obj": map[string]any{"a": 1}, "arr": []any{1, "x"},
		"big": uint64(math.MaxUint64), "maxi": int64(math.MaxInt64), "mini": int64(math.MinInt64),
		"uni": "héllo ✓",
	})
}

func TestFieldParity(t *testing.T) {
	jv, err := Parse([]byte(parityJSON), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mv, err := Parse(parityMsgPack(t), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if jv.Format() != JSON || mv.Format() != MsgPack {
		t.Fatalf("formats %v, %v", jv.Format(), mv.Format())
	}
	want := map[string]struct {
		kind Kind
		val  any
	}{
		"s":       {KindString, "text"},
		"uni":     {KindString, "héllo ✓"},
		"i":       {KindInt, int64(42)},
		"neg":     {KindInt, int64(-7)},
		"zero":    {KindInt, int64(0)},
		"maxi":    {KindInt, int64(math.MaxInt64)},
		"mini":    {KindInt, int64(math.MinInt64)},
		"f":       {KindFloat, 12.5},
		"fi":      {KindFloat, 3.0},
		"exp":     {KindFloat, 1000.0},
		"big":     {KindFloat, float64(math.MaxUint64)},
		"t":       {KindBool, true},
		"fl":      {KindBool, false},
		"nul":     {KindNull, nil},
		"obj":     {KindOther, nil},
		"arr":     {KindOther, nil},
		"missing": {KindMissing, nil},
	}
	for name, w := range want {
		for _, v := range []*Value{jv, mv} {
			f := v.Field(name)
			if f.Kind() != w.kind {
				t.Errorf("%v %s: kind %v, want %v", v.Format(), name, f.Kind(), w.kind)
				continue
			}
			var got any
			var ok bool
			switch w.kind {
			case KindString:
				got, ok = f.Str()
			case KindInt:
				got, ok = f.Int()
			case KindFloat:
				got, ok = f.Float()
			case KindBool:
				got, ok = f.Bool()
			default:
				ok = true
			}
			if !ok || got != w.val {
				t.Errorf("%v %s: %v (%v), want %v", v.Format(), name, got, ok, w.val)
			}
			if f.Exists() != (w.kind != KindMissing) {
				t.Errorf("%v %s: Exists = %v", v.Format(), name, f.Exists())
			}
		}
	}
	if jv.Len() != mv.Len() || jv.Len() != len(want)-1 {
		t.Errorf("Len: json %d, msgpack %d", jv.Len(), mv.Len())
	}
}

func TestFieldAccessors(t *testing.T) {
	v, err := Parse([]byte(`{"s":"x","i":3,"f":2.5,"b":true,"n":null}`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Field("s").Int(); ok {
		t.Error("Int on a string field is ok")
	}
	if _, ok := v.Field("f").Int(); ok {
		t.Error("Int on a float field is ok")
	}
	if x, ok := v.Field("i").Float(); !ok || x != 3 {
		t.Errorf("Float on an int field = %v, %v", x, ok)
	}
	if _, ok := v.Field("b").Str(); ok {
		t.Error("Str on a bool field is ok")
	}
	if _, ok := v.Field("n").Bool(); ok {
		t.Error("Bool on null is ok")
	}
	if _, ok := v.Field("nope").Float(); ok {
		t.Error("Float on a missing field is ok")
	}
	if !v.Field("n").Exists() || v.Field("n").Interface() != nil {
		t.Error("null field")
	}
	if got := v.Field("i").Interface(); got != json.Number("3") {
		t.Errorf("JSON numbers are stored as json.Number, got %#v", got)
	}
	for k, name := range map[Kind]string{KindMissing: "missing", KindOther: "other", KindFloat: "float", Kind(42): "Kind(42)"} {
		if k.String() != name {
			t.Errorf("%d.String() = %q", k, k.String())
		}
	}
	// Values stored with Set read back through the same accessors.
	for name, x := range map[string]any{"u8": uint8(9), "i32": int32(-9), "u": uint(9), "big": uint64(math.MaxUint64), "f32": float32(0.5), "int": 9} {
		if err := v.Set(name, x); err != nil {
			t.Fatal(err)
		}
		if f := v.Field(name); f.Kind() != KindInt && f.Kind() != KindFloat {
			t.Errorf("Set %s %T: kind %v", name, x, f.Kind())
		}
	}
}

// TestUnmodifiedForwardsOriginal proves Bytes hands back the caller's own
// bytes, not a copy and not a re-encoding, until something changes.
func TestUnmodifiedForwardsOriginal(t *testing.T) {
	// Odd spacing and key order that a re-encoding would not reproduce.
	js := []byte(`{ "z" : 1,  "a":[ 1.50 ] , "big": 123456789012345678901234567890 }`)
	for _, data := range [][]byte{js, parityMsgPack(t)} {
		v, err := Parse(data, ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_ = v.Field("z")
		if v.Delete("not-there") {
			t.Fatal("Delete of a missing field reported true")
		}
		out, err := v.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if v.Modified() || unsafe.SliceData(out) != unsafe.SliceData(data) || len(out) != len(data) {
			t.Fatalf("%v: unmodified value did not forward the original bytes", v.Format())
		}
		if err := v.Set("added", "x"); err != nil {
			t.Fatal(err)
		}
		out, err = v.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !v.Modified() || bytes.Equal(out, data) {
			t.Fatalf("%v: modified value forwarded the original", v.Format())
		}
		if unsafe.SliceData(v.Raw()) != unsafe.SliceData(data) {
			t.Fatalf("Raw is not the original")
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	in := []byte(`{"msg":"a \"quoted\" \\ line\nnext","big":123456789012345678901234567890,
		"f":1.50,"e":-2.5E-3,"nested":{"x":[1,{"y":null}]},"u":"\u00e9\ud83d\ude00","t":true}`)
	v, err := Parse(in, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set("processed", true); err != nil {
		t.Fatal(err)
	}
	if err := v.Set("msg", "replaced"); err != nil {
		t.Fatal(err)
	}
	if !v.Delete("t") {
		t.Fatal("Delete(t) = false")
	}
	out, err := v.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if Detect(out) != JSON || !json.Valid(out) {
		t.Fatalf("re-encoding is not JSON: %s", out)
	}
	// Numbers keep their exact text.
	for _, lit := range []string{`123456789012345678901234567890`, `1.50`, `-2.5E-3`} {
		if !bytes.Contains(out, []byte(lit)) {
			t.Errorf("re-encoding lost the literal %s: %s", lit, out)
		}
	}
	// Keys are sorted, so the encoding is deterministic.
	if !bytes.HasPrefix(out, []byte(`{"big":`)) {
		t.Errorf("keys not sorted: %s", out)
	}
	again, _ := v.Bytes()
	if unsafe.SliceData(again) != unsafe.SliceData(out) {
		t.Error("second Bytes re-encoded instead of reusing the encoding")
	}
	back, err := Parse(out, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	_ = json.Unmarshal(in, &want)
	_ = json.Unmarshal(out, &got)
	wm := want.(map[string]any)
	wm["processed"], wm["msg"] = true, "replaced"
	delete(wm, "t")
	if !reflect.DeepEqual(wm, got) {
		t.Errorf("round trip:\n got %v\nwant %v", got, wm)
	}
	if b, _ := back.Field("processed").Bool(); !b || back.Field("t").Exists() {
		t.Error("re-parsed value lost the change")
	}
	// A value JSON cannot carry is an encode error, not a panic.
	if err := v.Set("bad", math.NaN()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Bytes(); !errors.Is(err, ErrEncode) {
		t.Errorf("NaN in JSON: %v, want ErrEncode", err)
	}
}

func TestMsgPackRoundTrip(t *testing.T) {
	in := mpAllTypes()
	// Wrap the array in a map so fields can be set.
	data := append([]byte{0x82, 0xa3, 'a', 'l', 'l'}, in...)
	data = append(data, 0xa1, 'n', 0x07)
	v, err := Parse(data, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set("added", map[string]any{"k": []any{int64(1), "two"}}); err != nil {
		t.Fatal(err)
	}
	out, err := v.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if Detect(out) != MsgPack {
		t.Fatalf("re-encoding is not MsgPack: % x", out[:4])
	}
	back, err := Parse(out, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Every original value survives with its type: float32 stays float32,
	// binary stays binary, extensions keep type and body.
	orig := v.Interface().(map[string]any)
	got := back.Interface().(map[string]any)
	if !reflect.DeepEqual(orig, got) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, orig)
	}
	arr := got["all"].([]any)
	if _, ok := arr[13].(float32); !ok {
		t.Errorf("float32 came back as %T", arr[13])
	}
	if x, ok := arr[29].(Ext); !ok || x.Type != -1 || len(x.Data) != 1 {
		t.Errorf("ext32 came back as %#v", arr[29])
	}
	if u, ok := arr[8].(uint64); !ok || u != math.MaxUint64 {
		t.Errorf("uint64 came back as %#v", arr[8])
	}
	// The encoding is deterministic and stable under a second round trip.
	if err := back.Set("added", got["added"]); err != nil {
		t.Fatal(err)
	}
	out2, err := back.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, out2) {
		t.Error("re-encoding the re-parsed value gave different bytes")
	}
	// Ints take their smallest encoding.
	small, _ := Parse([]byte{0x81, 0xa1, 'n', 0xd3, 0, 0, 0, 0, 0, 0, 0, 5}, ParseOptions{})
	_ = small.Set("m", int64(-1))
	enc, err := small.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x82, 0xa1, 'm', 0xff, 0xa1, 'n', 0x05}; !bytes.Equal(enc, want) {
		t.Errorf("compact encoding % x, want % x", enc, want)
	}
}

func TestSetOnNonObject(t *testing.T) {
	for _, data := range [][]byte{[]byte(`[1,2]`), []byte(`"s"`), {0x92, 1, 2}, {0xa1, 'x'}} {
		v, err := Parse(data, ParseOptions{Format: map[bool]Format{true: JSON, false: MsgPack}[data[0] < 0x80]})
		if err != nil {
			t.Fatal(err)
		}
		err = v.Set("a", 1)
		wantKind(t, err, ErrNotObject, -1)
		if v.Modified() || v.Delete("a") {
			t.Error("non-object value changed")
		}
		out, _ := v.Bytes()
		if !bytes.Equal(out, data) {
			t.Error("non-object value does not forward its bytes")
		}
	}
}
