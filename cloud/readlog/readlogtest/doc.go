// Package readlogtest is the behavioural test every readlog.Log
// implementation passes: run it from the implementation's tests with a
// factory for empty logs (Run).
package readlogtest
