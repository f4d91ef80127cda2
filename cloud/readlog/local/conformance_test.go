package local

import (
	"testing"

	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/readlog/readlogtest"
)

func TestConformance(t *testing.T) {
	readlogtest.Run(t, readlogtest.Suite{
		Partitions:     3,
		MaxRecordBytes: 4096,
		New: func(t *testing.T) func() readlog.Log {
			dir := t.TempDir()
			return func() readlog.Log {
				return openLog(t, dir, WithPartitions(3), WithMaxRecordBytes(4096), WithConsumers("workers"))
			}
		},
	})
}
