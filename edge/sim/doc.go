// Package sim runs virtual meters through the real agent pipeline
// (sensor → sampler → Badger buffer → MQTT publisher), many in one process,
// on a simulated clock that runs Speed times faster than real time.
//
// Two profiles drive the sensors: "household", a synthetic but plausible
// home (base load, fridge cycling, kettle, oven, washing machine and water
// heater switching at realistic times of day, seeded per meter so runs are
// reproducible), and "replay", the real UCI household file played minute by
// minute. Every generated reading is written to a truth file
// (device,channel,quantity,seq_epoch,seq,time,value) so an end-to-end test
// can compare what the collector computed with what was generated.
//
// Run is the whole simulator; cmd/gridedge-sim is a thin flag parser around
// it and end-to-end tests call it directly.
package sim
