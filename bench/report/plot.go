package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Colors of the bars: ebpfovs stands out from the alternatives.
var (
	baselineColor = color.RGBA{R: 0x7f, G: 0x8c, B: 0x9d, A: 0xff}
	ebpfovsColor  = color.RGBA{R: 0xd9, G: 0x5f, B: 0x02, A: 0xff}
)

// plotMetrics are the panels of the plot, three rows of three.
var plotMetrics = [][]Metric{
	{TputSame, TputDiff, ConnRate},
	{CPUSame, LatP50, LatP99},
	{UDPRate, SYNRate, SYNCPU},
}

// WritePlot draws one bar chart per metric (bars: medians; whiskers:
// min–max over the rounds; the ebpfovs paths E, F, G, J, K and M in orange) and
// writes it as a PNG to file. title goes above the panels.
func (r *Results) WritePlot(file, title string) error {
	const dpi = 96
	rows, cols := len(plotMetrics), len(plotMetrics[0])
	width, height := vg.Length(cols)*4.2*vg.Inch, vg.Length(rows)*3.2*vg.Inch+0.4*vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	// White background (vgimg starts transparent).
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	titleStyle := draw.TextStyle{Color: color.Black, Font: plot.DefaultFont, XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	titleStyle.Font.Size = vg.Points(14)
	dc.FillText(titleStyle, vg.Point{X: width / 2, Y: height - 0.1*vg.Inch}, title)

	plots := make([][]*plot.Plot, rows)
	for j, row := range plotMetrics {
		for _, m := range row {
			p, err := r.panel(m)
			if err != nil {
				return fmt.Errorf("plot %s: %w", m.Key, err)
			}
			plots[j] = append(plots[j], p)
		}
	}
	area := draw.Crop(dc, 0, 0, 0, -0.45*vg.Inch)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: 0.25 * vg.Inch, PadY: 0.25 * vg.Inch,
		PadTop: 0.1 * vg.Inch, PadBottom: 0.1 * vg.Inch, PadLeft: 0.1 * vg.Inch, PadRight: 0.1 * vg.Inch}
	canvases := plot.Align(plots, tiles, area)
	for j := range plots {
		for i := range plots[j] {
			plots[j][i].Draw(canvases[j][i])
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot: write %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot: write %s: %w", file, err)
	}
	return nil
}

// panel is the bar chart of one metric over all paths.
func (r *Results) panel(m Metric) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = m.Title
	p.Y.Label.Text = m.Unit
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	var labels []string
	var errXY plotter.XYs
	var errs plotter.YErrors
	for i, path := range r.Paths {
		label := path.ID
		s := r.Stat(path.ID, m)
		if path.Unavailable != "" || s.N == 0 {
			labels = append(labels, label+" (n/a)")
			continue
		}
		labels = append(labels, label)
		bar, err := plotter.NewBarChart(plotter.Values{s.Median}, vg.Points(22))
		if err != nil {
			return nil, err
		}
		bar.XMin = float64(i)
		bar.Color = baselineColor
		if strings.Contains("EFGJKM", path.ID) {
			bar.Color = ebpfovsColor
		}
		bar.LineStyle.Width = 0
		p.Add(bar)
		errXY = append(errXY, plotter.XY{X: float64(i), Y: s.Median})
		errs = append(errs, struct{ Low, High float64 }{s.Median - s.Min, s.Max - s.Median})
		// The median above the whisker, so the plot can be read without
		// the table.
		lbl, err := plotter.NewLabels(plotter.XYLabels{
			XYs:    plotter.XYs{{X: float64(i), Y: s.Max}},
			Labels: []string{format(s.Median, labelDigits(s.Median))},
		})
		if err != nil {
			return nil, err
		}
		for k := range lbl.TextStyle {
			lbl.TextStyle[k].XAlign = draw.XCenter
			lbl.TextStyle[k].YAlign = draw.YBottom
			lbl.TextStyle[k].Font.Size = vg.Points(9)
		}
		lbl.Offset = vg.Point{Y: vg.Points(2)}
		p.Add(lbl)
		if s.Max > p.Y.Max/1.15 {
			p.Y.Max = s.Max * 1.15
		}
	}
	if len(errXY) > 0 {
		p.Add(&plotter.YErrorBars{XYs: errXY, YErrors: errs, LineStyle: plotter.DefaultLineStyle, CapWidth: vg.Points(6)})
	}
	p.NominalX(labels...)
	// Keep a slot for every path, also those without bars (F).
	p.X.Min, p.X.Max = -0.6, float64(len(r.Paths))-0.4
	return p, nil
}

// labelDigits chooses decimals for a bar label: about three significant
// digits.
func labelDigits(v float64) int {
	switch a := math.Abs(v); {
	case a >= 100:
		return 0
	case a >= 10:
		return 1
	case a >= 1:
		return 2
	default:
		return 3
	}
}
