# Plot of a bench/run result (called by bench/lib/report.py):
#   gnuplot -e "dir='DIR'; out='FILE.svg'; n=TARGETS; heading='...'" bench/lib/plot.gp
# DIR holds reqs.dat, cpu.dat and p99.dat: one row per scenario, the first
# column its label, then one column per target, a header line naming them.
# (report.py leaves the direct baseline out: its bars would dwarf the
# proxies'; the tables have it.)
if (strstrt(out, ".png") > 0) {
    set terminal pngcairo size 1500,1250 enhanced font "Helvetica,11" background rgb "white"
} else {
    set terminal svg size 1500,1250 dynamic enhanced font "Helvetica,12" background rgb "white"
}
set output out
set datafile separator "\t"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border rgb "#333333"
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set xtics rotate by 30 right nomirror font ",11" offset 0,-0.2
set bmargin 5.5
set ytics nomirror
set key outside right top vertical
set linetype 1 lc rgb "#1b9e77"
set linetype 2 lc rgb "#d95f02"
set linetype 3 lc rgb "#7570b3"
set linetype 4 lc rgb "#999999"
set lmargin 12
set rmargin 22
set multiplot layout 3,1 title heading font ",14"

set title "requests/s (median of the rounds; higher is better)"
set ylabel "req/s"
set yrange [0:*]
set format y "%.0s%c"
plot for [i=2:n+1] dir."/reqs.dat" using i:xtic(1) title columnheader(i)

set title "CPU time of the proxy per request (lower is better)"
set ylabel "µs / request"
set format y "%g"
plot for [i=2:n+1] dir."/cpu.dat" using i:xtic(1) title columnheader(i)

set title "p99 latency (log scale; lower is better)"
set ylabel "ms"
set logscale y
set yrange [*:*]
plot for [i=2:n+1] dir."/p99.dat" using i:xtic(1) title columnheader(i)
unset multiplot
