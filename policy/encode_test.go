package policy

import (
	"bytes"
	"testing"
)

// TestDecodeBundleOfFormat1 decodes testdata/encoded/format1-good.json, the
// bundle of testdata/good as Encode wrote it before keys, headers and retired
// policies existed (encoding format 1), as a node finds it in the Raft log
// after an upgrade. It must decode to the same policies and encode to the same
// bytes, so that the bundle hash and the comparison with the folder still agree.
func TestDecodeBundleOfFormat1(t *testing.T) {
	golden := mustRead(t, "testdata/encoded/format1-good.json")
	set, err := Decode(golden)
	if err != nil {
		t.Fatalf("an older bundle does not decode: %v", err)
	}
	folder, err := LoadDir("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := set.Encode(), folder.Encode(); !bytes.Equal(got, want) {
		t.Fatalf("the decoded bundle differs from the folder it was made from:\n%s\n%s", got, want)
	}
	if !bytes.Equal(set.Encode(), golden) {
		t.Fatal("re-encoding an older bundle changes its bytes")
	}
	if set.Hash() != folder.Hash() {
		t.Fatal("the bundle hash changed")
	}
	if err := folder.CheckAgainst(set); err != nil {
		t.Fatalf("the same folder against its own older bundle: %v", err)
	}
}
