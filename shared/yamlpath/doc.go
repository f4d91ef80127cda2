// Package yamlpath decodes YAML strictly and reports every problem in one
// line that names the field by its YAML path, e.g.
//
//	mqtt.uri (line 14): unknown field (did you mean "url"?); known: url, client_id, …
//	channels[2].interval (line 36): want a duration like "10s" or "1m30s", got "fast"
//
// instead of the decoder's "line 36: field uri not found in type
// config.MQTT". Decode walks the parsed document against the Go type it
// will be decoded into (struct fields by their yaml tags, inline structs,
// slices, maps, pointers, yaml.Unmarshaler types), so it needs no schema of
// its own and stays true when fields are added.
package yamlpath
