# chart.gp: bench/results.png from summarize.py's data: per case, how many times faster lmnet's training step
# is than each PyTorch side (its step time / ours; above 1: lmnet is faster).
# gnuplot -e "datafile='build/bench/chart.dat'; outfile='bench/results.png'" bench/chart.gp
set terminal pngcairo size 900,500 font ",11" noenhanced
set output outfile
set title "lmnet training step vs PyTorch, 2 threads, medians (see bench/results.md)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "PyTorch step time / lmnet's (higher: lmnet faster)"
set yrange [0:*]
set grid ytics
set key top right autotitle columnhead
set arrow from graph 0, first 1.8 to graph 1, first 1.8 nohead dt 2 lc rgb "#c00000"
set label "1.8x target (f32)" at graph 0.01, first 1.8 offset 0,0.6 tc rgb "#c00000"
plot for [i=2:*] datafile using i:xtic(1)
