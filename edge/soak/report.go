package soak

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteTable writes the samples and the summary as an aligned table.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "sim\twall\tlink\theld\tlive MB\tdisk MB\tfiles MB\tfiles\tsst\tfds\tfds dir\tmapped MB\tmapped dir MB\theap MB\tlive heap MB\tgo sys MB\trss MB\thwm MB\t")
	row := func(label string, s Sample) {
		link := "up"
		if !s.Online {
			link = "DOWN"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n",
			label, s.Wall.Round(time.Second), link, s.Held, mb(s.LiveBytes), mb(s.DiskBytes), mb(s.FileBytes), s.Files, s.Tables,
			s.OpenFiles, s.OpenFilesInDir, mb(s.MappedBytes), mb(s.MappedInDir), mb(int64(s.HeapAlloc)), mb(int64(s.HeapLive)), mb(int64(s.GoSys)), mb(s.RSS), mb(s.HWM))
	}
	for _, s := range r.Samples {
		row(simLabel(s.Sim), s)
	}
	row("peak", r.Peak)
	row("drained", r.AfterDrain)
	row("reopened", r.AfterReopen)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "appended %d, read %d (each once, in order), acked and deleted %d; peak backlog %d readings (%.1f MB live); wall time %v\n",
		r.Appended, r.Read, r.Acked, r.Peak.Held, mb(r.PeakBacklogBytes), r.Elapsed.Round(time.Second))
	if err == nil && r.Peak.ProcessErr != "" {
		_, err = fmt.Fprintf(w, "process usage unavailable: %s\n", r.Peak.ProcessErr)
	}
	return err
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// simLabel prints simulated time as days and hours: "d2 06:00".
func simLabel(d time.Duration) string {
	day := int(d / (24 * time.Hour))
	rest := d - time.Duration(day)*24*time.Hour
	return fmt.Sprintf("d%d %02d:%02d", day, int(rest/time.Hour), int(rest%time.Hour/time.Minute))
}
