// Package mqttclient is the collector's side of MQTT security and
// connection keeping:
//
//   - Credentials come from a file (systemd LoadCredential= or
//     EnvironmentFile=, same KEY=VALUE format) or the environment
//     (GRIDEDGE_MQTT_USERNAME, GRIDEDGE_MQTT_PASSWORD), never from a command
//     line that shows in ps; a broker URL carrying user:password still works
//     but is only ever logged redacted (Redact).
//   - The default client id is random and kept in the data directory
//     (StableClientID): stable across restarts, as a persistent session
//     needs, and unpredictable, so on a broker that does not bind client ids
//     to usernames no other client can guess it and take the collector's
//     session over.
//   - Keeper keeps a client connected and logs every failed attempt with the
//     broker's reason: ERROR when the broker refused (bad credentials, not
//     authorised, identifier rejected: it will not fix itself), WARN when it
//     could not be reached. Attempts back off from 1 s to 30 s, so the log
//     grows by at most two lines a minute while the broker is away.
package mqttclient
