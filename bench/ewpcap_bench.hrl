%% make bench: shared by its modules
-define(FILTER, "udp dst port 9000").
-define(MiB, 1048576).
