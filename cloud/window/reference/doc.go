// Package reference recomputes what the window engine must produce, the
// plain way: walk the arrivals once to classify each reading as accepted or
// late (lateness depends on arrival order), then group accepted readings by
// window, sort each group by event time and compute every aggregate from
// the whole group. It is slow and obviously correct, and exists so property
// tests can demand that the engine's final results equal it exactly.
package reference
