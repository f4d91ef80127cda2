// Package kafka is the cluster implementation of readlog.Log: the readings
// log is one Kafka topic, a device's records go to the partition
// readlog.PartitionFor gives (the same placement as the local log), and
// workers form a consumer group.
//
// # Writing
//
// Append produces with an idempotent producer and acks=all (every in-sync
// replica has the record): its done callback runs with the record's offset
// only after the broker's acknowledgement, and callbacks of one partition
// run in offset order. Records and bytes buffered and not yet acknowledged
// are bounded (WithInflightBytes): Append blocks, honouring its context,
// while the bound is reached. While the brokers are unreachable the producer
// retries: appends stay unacknowledged (so are the devices' batches, which
// the agents keep buffering) and complete once a broker answers, stored
// once (the idempotent producer's retries are not duplicated). A record
// never sent within WithDeliveryTimeout fails its callback instead; the
// agent resends that batch.
//
// # Reading
//
// Open(p, from) returns a Reader consuming partition p directly from
// offset from with its own client (no group): a worker's offset is the one
// stored with its state, not the group's. Open below the partition's first
// retained offset, or a Fetch that finds its next record deleted by
// retention, returns a *readlog.TrimmedError.
//
// # Groups
//
// Join makes the process a member of a consumer group over the topic: the
// group coordinator assigns partitions (cooperative-sticky), the member's
// handler starts a partition's worker on assignment and stops it, after its
// final commit, on revocation. The member fetches nothing itself. Commit
// stores a group's offset through its member in this process (with the
// member's generation), or with an administrative commit when the process
// has no member of that group. Kafka does not delete records when a group
// commits: the topic's retention (WithRetention, at creation) trims it; the
// group offsets serve monitoring (lag) and tell an operator what is safe to
// delete.
//
// # Transactions
//
// NewTxn starts the transactional producer of one readings partition
// (transactional id <group prefix><group>-<partition>): starting it fences
// every earlier producer of that id (their open transaction is aborted,
// their next one fails with ErrFenced), then it commits a fence record to
// the partition of each state topic it is given. Txn.Commit produces a
// commit's records and adds the group's offset of the readings partition
// (TxnOffsetCommit) in one transaction: read_committed consumers see all of
// it or none. ReadCommitted replays a partition up to a fence record;
// Follow reads many partitions from given positions, committed records
// only. EnsureTopics creates compacted or retention-bounded topics.
//
// # Bounds
//
// Connections: one producer client, one client per open Reader, Txn,
// Follower and group member, each with a connection per broker it talks
// to. Memory: the in-flight bound, and per Reader, Follower or replay one
// fetch (WithFetchBytes, 4 MiB); a Txn holds one commit's records.
// Goroutines: those of the clients; none of the package's own per record.
package kafka
