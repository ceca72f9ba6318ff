%%% Macros of the remote suites and their helper module ewpcap_remote.
-define(TB, ewpcap_testbed).
-define(D, 'ewpcap@10.77.1.2').
-define(WAIT, 5000).
-define(QUIET, 500).
-define(DLT_EN10MB, 1).
-define(ETHERTYPE, 16#88B5).
-define(TICK, 4).
