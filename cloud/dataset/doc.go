// Package dataset turns the rows of the window engine's snapshot and
// session pipelines into ML datasets: flat rows (device, channel, window,
// revision, time and one value per column) written as CSV or Parquet one
// row at a time, read back by ReadCSV and ReadParquet, and their quality
// (time order, merged share) as Prometheus metrics of bounded cardinality.
//
// Guarantees: a Writer holds at most one Parquet row group in memory
// (ParquetRowGroupRows rows) and a 32 KiB buffer for CSV, whatever the
// number of rows; Quality keeps per-device series for at most its device
// limit (DefaultQualityDevices), fleet-level histograms for the rest.
package dataset
