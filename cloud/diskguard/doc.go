// Package diskguard keeps a free-space reserve on the collector's data
// directory, so a full disk stops acknowledgements, not the process.
//
// Below the reserve, Check fails: intake refuses new payloads (they are not
// acknowledged, so agents keep them and resend). Below half the reserve (the
// write floor), CanWrite is false: workers hold their commits, because the
// embedded store treats a failed write-ahead-log write as fatal. The free
// space is read (one statfs) at most once per check interval and only when
// somebody asks: an idle collector does not poll its disk. When space
// returns, the next check sees it and everything resumes by itself.
package diskguard
