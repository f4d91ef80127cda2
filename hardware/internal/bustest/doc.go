// Package bustest injects bus failures (NACK, stuck bus) into periph's
// replay fakes, which can only replay success.
package bustest
