# chart.gp: bench/results.png from summarize.py's data: per case, how many times faster we are than the twin
# (training step time, or tokens/s for generation) and how many times less peak memory we use.
# gnuplot -e "datafile='build/bench/chart.dat'; outfile='bench/results.png'" bench/chart.gp
set terminal pngcairo size 900,500 font ",11" noenhanced
set output outfile
set title "lmnet (compiled C) vs PyTorch twin, 2 threads, medians (shared machine)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "times better than the twin (higher is better)"
set yrange [0:*]
set grid ytics
set key top right
set arrow from graph 0, first 3 to graph 1, first 3 nohead dt 2 lc rgb "#c00000"
set label "3x target (training)" at graph 0.01, first 3 offset 0,0.6 tc rgb "#c00000"
plot datafile using 2:xtic(1) title "speed-up (step time; tok/s for generation)", \
     '' using 3 title "peak-memory ratio (twin RSS / ours)"
