%%% Macros of the remote suites, ewpcap_tls_SUITE and their helper module
%%% ewpcap_remote; in the suites, the helpers imported from it.
-define(TB, ewpcap_testbed).
-define(D, 'ewpcap@10.77.1.2').
-define(WAIT, 5000).
-define(QUIET, 500).
-define(DLT_EN10MB, 1).
-define(TICK, 4).

%% the packet helpers of the live suites (ewpcap_live, loaded on the peers)
-import(ewpcap_live, [udp_filter/1, marker/1, ethernet_frame/1]).

-ifndef(EWP_REMOTE_HELPERS).
-import(ewpcap_remote, [
    ns/2, daemon/1, daemon/2, stop/1, client/2, client/3, capturing_client/3,
    on/2, on/3, on_c/2, send_udp/3, c_udp_socket/2, handles/2, info/2,
    connect_and_call/1, cpu_ticks/1, handle_packets/2, refs/2, connected/2,
    log_text/1, payloads/1, recv_packets/3, quiet/2, record/2, stream/3,
    stream/4, error_of/1, catch_erpc/1, flush/0, tcp_ports/1, udp_frame/6,
    decode_udp/1, capturing_client_on/2, flush_list/0, recv_batches/3,
    recv_quiet/2, numbered_payloads/1, numbered/1, numbered_any/1, chunks/2,
    first_diff/3
]).
-endif.
