package collector

import (
	"encoding/json"
	"fmt"

	"github.com/gridedge/gridedge/cloud/store"
)

// interim encoding until cloud/feed lands.
func encodeFeedResult(r *store.WindowResult) (key, value []byte, err error) {
	v, err := json.Marshal(r)
	if err != nil {
		return nil, nil, fmt.Errorf("results topic: %w", err)
	}
	return []byte(r.Pipeline + "/" + r.Device), v, nil
}

func decodeFeedResult(v []byte) (store.WindowResult, error) {
	var r store.WindowResult
	err := json.Unmarshal(v, &r)
	return r, err
}
