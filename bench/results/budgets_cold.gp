# Re-make the plot with: gnuplot budgets_cold.gp
set terminal svg size 900,560 dynamic background rgb 'white'
set output "budgets_cold.svg"
set title 'moestream bench: decode speed against the expert cache budget'
set xlabel 'expert cache budget (MiB)'
set ylabel 'decode tok/s'
set yrange [0:*]
set grid
set key below
plot "budgets_cold.dat" index 0 using 1:2 with linespoints title "k=model mmap lru", \
     "budgets_cold.dat" index 1 using 1:2 with linespoints title "k=model uring lru"
