//go:build linux

package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// chart draws each metric's ratio to the Go mTLS pipe, one bar per proxy, with the
// pipe's 1.0 as a vertical line: the picture of the report's ratio columns.
func chart(path string, med map[string]map[string]float64) error {
	const (
		labelW, barW, rowH, top = 330, 520, 40, 40
		maxRatio                = 4.0
	)
	proxies := []string{"stunnel", "ztunnel"}
	colors := map[string]color.RGBA{"stunnel": {150, 150, 150, 255}, "ztunnel": {70, 110, 200, 255}}
	img := image.NewRGBA(image.Rect(0, 0, labelW+barW+80, top+rowH*len(metricOrder)+30))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text(img, 10, 20, "ratio to the Go mTLS pipe (line = 1.0); grey: stunnel, blue: ztunnel", color.Black)
	x0 := labelW
	scale := func(r float64) int { return int(math.Min(r, maxRatio) / maxRatio * barW) }
	for i, k := range metricOrder {
		y := top + i*rowH
		text(img, 10, y+22, k, color.Black)
		for j, p := range proxies {
			v, okP := med[p][k]
			base, okB := med["mtls-pipe"][k]
			if !okP || !okB || base == 0 {
				continue
			}
			r := v / base
			by := y + 4 + j*16
			draw.Draw(img, image.Rect(x0, by, x0+scale(r), by+14), &image.Uniform{colors[p]}, image.Point{}, draw.Src)
			text(img, x0+scale(r)+4, by+12, fmt.Sprintf("%.2f", r), color.Black)
		}
	}
	one := x0 + scale(1)
	draw.Draw(img, image.Rect(one, top, one+2, top+rowH*len(metricOrder)), &image.Uniform{color.RGBA{200, 40, 40, 255}}, image.Point{}, draw.Src)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ascii spells the report's labels in the characters the 7×13 font has.
var ascii = strings.NewReplacer("→", "->", "µ", "u", "×", "x", "≥", ">=", "≤", "<=")

func text(img draw.Image, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(ascii.Replace(s))
}
