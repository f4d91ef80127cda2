// Package household is a synthetic home's electricity use as a pure function
// of time (base load, fridge cycling, kettle, oven, washing machine, water
// heater), and the sim-household sensor driver built on it.
//
// It is a leaf package apart from the simulator so that gridedge-agent can
// offer the driver (to run the real binary without hardware) without linking
// the simulator; the simulator's household profile uses the same model.
package household
