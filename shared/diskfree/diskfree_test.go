package diskfree

import "testing"

func TestAvailableOfATempDir(t *testing.T) {
	n, err := Available(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 {
		t.Fatalf("Available = %d, want > 0 on a writable temp dir", n)
	}
	if _, err := Available("/nonexistent/gridedge-diskfree"); err == nil {
		t.Fatal("Available of a missing directory: want an error")
	}
}
