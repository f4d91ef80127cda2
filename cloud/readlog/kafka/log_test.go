package kafka

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
			c := cluster(t)
			return func() readlog.Log { return openLog(t, c, WithPartitions(3), WithMaxRecordBytes(4096)) }
		},
	})
}
