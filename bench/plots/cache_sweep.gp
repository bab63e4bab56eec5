# Re-make the plot with: gnuplot cache_sweep.gp
set terminal svg size 900,560 dynamic background rgb 'white'
set output "cache_sweep.svg"
set title 'moestream bench: decode speed against the expert cache budget'
set xlabel 'expert cache budget (MiB)'
set ylabel 'decode tok/s'
set yrange [0:*]
set grid
set key below
plot "cache_sweep.dat" index 0 using 1:2 with linespoints title "k=model auto lru", \
     "cache_sweep.dat" index 1 using 1:2 with linespoints title "k=model auto arc"
