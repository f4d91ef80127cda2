package feed_test

import "github.com/gridedge/gridedge/cloud/readlog"

func readlogPartition(dev string, n int) int { return readlog.PartitionFor([]byte(dev), n) }
