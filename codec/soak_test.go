package codec

import (
	"math/rand/v2"
	"os"
	"testing"
)

// TestSoakMutations parses a million random mutations of the seed corpora
// in every format mode and checks each outcome is a value or a typed
// payload error. It runs only with KEEL_SOAK=1.
func TestSoakMutations(t *testing.T) {
	if os.Getenv("KEEL_SOAK") != "1" {
		t.Skip("set KEEL_SOAK=1 to run the soak")
	}
	seeds := [][]byte{[]byte(parityJSON), mpAllTypes(), jsonArrays(70), mpMaps(70),
		[]byte(`{"a":"b\"c","d":[1,2,{"e":null}]}`)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 1_000_000 {
		src := seeds[i%len(seeds)]
		data := append([]byte(nil), src...)
		for range 1 + rng.IntN(4) {
			switch rng.IntN(3) {
			case 0: // flip a byte
				if len(data) > 0 {
					data[rng.IntN(len(data))] = byte(rng.IntN(256))
				}
			case 1: // cut
				data = data[:rng.IntN(len(data)+1)]
			case 2: // insert
				p := rng.IntN(len(data) + 1)
				data = append(data[:p], append([]byte{byte(rng.IntN(256))}, data[p:]...)...)
			}
		}
		for _, f := range []Format{Auto, JSON, MsgPack} {
			v, err := Parse(data, ParseOptions{Format: f})
			if err != nil {
				checkPayloadError(t, err)
				continue
			}
			if _, err := v.Bytes(); err != nil {
				t.Fatalf("unmodified Bytes failed: %v", err)
			}
		}
	}
}
