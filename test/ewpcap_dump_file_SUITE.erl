%%% @doc Tests of the ewpcap_dump escript (bin/ewpcap_dump) on savefiles,
%%% run as a user would: as an OS process, its output and exit status
%%% checked (live captures: ewpcap_dump_SUITE; what both use:
%%% ewpcap_dump_helpers).
%%%
%%% The savefiles of test/data/ (made by ewpcap_dump_helpers:fixtures/1, a
%%% tiny pcap writer; the case fixtures_up_to_date checks that they still
%%% are what it makes): the text of known packets against
%%% test/data/known.txt, and against tcpdump's own text of the same files;
%%% byte orders, timestamp resolutions and link types; -v, -n; -r with -w,
%%% from standard input and with a filter (which the daemon applies); bad
%%% flags and filters (exit 2, one line). Times print with TZ=UTC.
%%% @end
-module(ewpcap_dump_file_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).

-import(ewpcap_dump_helpers, [
         fixtures/1, known_packets/0, cooked_packets/0, raw_packets/0, eth/1, eth/4, pad/2,
         arp/5, ipv4/4, ipv6/5, ipv6/6, udp/3, tcp/8, tcp/9, icmp/3, addr/1, checksum/1, fold/1,
         write_pcap/3, write_pcap/5, extra_ns/1, norm_rec/1, root/0, dump_path/0, data_dir/0,
         data/2, need/1, known/1, read/1, lines/1, re_quote/1, dump/2, dump/3, cmd/1, start/2,
         start/3, start_cmd/1, start_cmd/2, start_sh/2, get_procs/0, tmp_dir/0, out_file/1,
         quote/1, wait_listening/1, exited/1, wait_until/2, wait_exit/2, stop/2, stop_proc/1,
         descendants/1, descendants/3, start_pty/1, pty_wait/4, pty_wait/5, pty_wait_until/5,
         pattern_prefix/1, pty_exit/3, udp_receiver/0, send_udp/3, send_udp6/3, tcp_exchange/2,
         icmp_echo/2, icmp6_echo/2, make_namespaces/0, run_ip/1, cleanup_namespaces/0,
         start_ns_daemon/1, ns_ready/2, ns_hold/1, stop_ns_daemon/1
        ]).

-define(T0, 1700000000).      % fixture time: 2023-11-14 22:13:20 UTC

%%% ===================================================================
%%% Common Test callbacks
%%% ===================================================================

suite() ->
    [{timetrap, {minutes, 10}}].

all() ->
    [fixtures_up_to_date, known_text, known_text_is_tcpdumps, big_endian_nanoseconds,
     read_in_chunks, linux_cooked_and_raw, verbose, names, count_on_read, read_stdin,
     rewrite_identical, read_filter, read_bad_filter, read_missing_file, bad_flags,
     help_and_version].

init_per_suite(Config) ->
    Dump = dump_path(),
    case filelib:is_regular(Dump) of
        true -> [{dump, Dump}, {data, data_dir()} | Config];
        false -> {skip, "bin/ewpcap_dump not built (make)"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, Config) ->
    % a case that failed may leave a capture running: end it
    [stop_proc(P) || P <- get_procs()],
    erase(procs),
    Config.

%%% ===================================================================
%%% Offline: savefiles
%%% ===================================================================

%% The checked-in fixtures are exactly what fixtures/1 writes.
fixtures_up_to_date(Config) ->
    Dir = ?config(priv_dir, Config),
    Files = fixtures(Dir),
    [?assertEqual({F, read(filename:join(Dir, F))}, {F, read(filename:join(?config(data, Config), F))})
     || F <- Files],
    ok.

%% The text of the known packets, byte for byte.
known_text(Config) ->
    {0, Out, Err} = dump(Config, ["-n", "-r", data(Config, "known.pcap")]),
    ?assertEqual(known(Config), lines(Out)),
    ?assertEqual([<<"reading from file ", (list_to_binary(data(Config, "known.pcap")))/binary,
                    ", link-type EN10MB (Ethernet), snapshot length 262144">>], lines(Err)).

%% The checked-in fallback, test/data/known.txt (used where tcpdump is
%% missing), is tcpdump's text of known.pcap.
known_text_is_tcpdumps(Config) ->
    need("tcpdump"),
    {0, Out, _} = cmd(["tcpdump", "-n", "-r", data(Config, "known.pcap")]),
    ?assertEqual(lines(read(data(Config, "known.txt"))), lines(Out)),
    % and for the relative TCP sequence numbers' counterpart, -S
    {0, TOut, _} = cmd(["tcpdump", "-n", "-S", "-r", data(Config, "known.pcap")]),
    {0, EOut, _} = dump(Config, ["-n", "-S", "-r", data(Config, "known.pcap")]),
    ?assertEqual(lines(TOut), lines(EOut)).

%% Big-endian, nanosecond savefile: the same lines (times truncated to
%% microseconds, as tcpdump prints them).
big_endian_nanoseconds(Config) ->
    {0, Out, _} = dump(Config, ["-n", "-r", data(Config, "known-be-ns.pcap")]),
    ?assertEqual(known(Config), lines(Out)),
    {ok, 1, 262144, Recs} = ewpcap_pcap_file:read_file(data(Config, "known-be-ns.pcap")),
    {ok, 1, 262144, Recs} = ewpcap_pcap_file:read_file(data(Config, "known.pcap")).

%% ewpcap_pcap_file:read/2 (records cut from 64 KiB reads, as -r reads)
%% gives what read/1 gives, record by record: records across chunk
%% boundaries, one bigger than a chunk, empty ones, any batch size; and
%% a truncated last record is the same error after the same records
%% (those first, then the error: -r prints them all, as tcpdump). The
%% same for a nanosecond pcap and a pcapng file (read one record at a
%% time), in microseconds and in nanoseconds.
read_in_chunks(Config) ->
    Dir = ?config(priv_dir, Config),
    Sizes = [0, 10, 70000, 3] ++ [I rem 1600 || I <- lists:seq(1, 400)] ++ [65536 - 16, 65536],
    Is = lists:seq(1, length(Sizes)),
    Recs = [{1000000 * I + I, S + I rem 3, list_to_binary([I rem 256 || _ <- lists:seq(1, S)])}
            || {I, S} <- lists:zip(Is, Sizes)],
    % the same times with nanoseconds below the microsecond
    Nanos = [{T * 1000 + I rem 1000, L, P} || {I, {T, L, P}} <- lists:zip(Is, Recs)],
    Pcap = [ewpcap_pcap_file:header(1, 262144, native) | [ewpcap_pcap_file:record(T, L, P) || {T, L, P} <- Recs]],
    Nano = [ewpcap_pcap_file:header(1, 262144, native, nano)
            | [ewpcap_pcap_file:record(T, L, P, nano) || {T, L, P} <- Nanos]],
    Ng = [ewpcap_pcapng:shb(#{}), ewpcap_pcapng:idb(#{linktype => 1, snaplen => 262144, tsresol => 9})
          | [ewpcap_pcapng:epb(0, T, L, P) || {T, L, P} <- Nanos]],
    [read_in_chunks(filename:join(Dir, File), iolist_to_binary(Bin), Opts, Expect)
     || {File, Bin, Opts, Expect} <- [{"chunks.pcap", Pcap, #{}, Recs},
                                      {"chunks-ns.pcap", Nano, #{precision => nano}, Nanos},
                                      {"chunks-ns-us.pcap", Nano, #{}, Recs},
                                      {"chunks.pcapng", Ng, #{precision => nano}, Nanos},
                                      {"chunks-us.pcapng", Ng, #{}, Recs}]],
    ok.

read_in_chunks(Whole, Bin, Opts, Recs) ->
    Cut = Whole ++ "-cut",
    ok = file:write_file(Whole, Bin),
    ok = file:write_file(Cut, binary:part(Bin, 0, byte_size(Bin) - 5)),
    ?assertEqual({Whole, {ok, Recs}}, {Whole, read_savefile(Whole, Opts, one)}),
    [?assertEqual({Whole, N, {ok, Recs}}, {Whole, N, read_savefile(Whole, Opts, N)}) || N <- [1, 7, 256, 10000]],
    {error, {Cut, _} = Why, Before} = read_savefile(Cut, Opts, one),
    ?assertEqual(lists:droplast(Recs), Before),
    [?assertEqual({N, {error, Why, Before}}, {N, read_savefile(Cut, Opts, N)}) || N <- [1, 7, 256]].

read_savefile(File, Opts, How) ->
    {ok, F} = ewpcap_pcap_file:open_read(File, Opts),
    try read_each(F, How, []) after ewpcap_pcap_file:close_read(F) end.

read_each(F, one, Acc) ->
    case ewpcap_pcap_file:read(F) of
        {ok, Rec, F1} -> read_each(F1, one, [Rec | Acc]);
        eof -> {ok, lists:reverse(Acc)};
        {error, R} -> {error, R, lists:reverse(Acc)}
    end;
read_each(F, N, Acc) ->
    case ewpcap_pcap_file:read(F, N) of
        {ok, Recs, F1} when length(Recs) =< N -> read_each(F1, N, lists:reverse(Recs, Acc));
        {eof, Recs} when length(Recs) =< N -> {ok, lists:reverse(Acc, Recs)};
        {error, R} -> {error, R, lists:reverse(Acc)}
    end.

%% DLT 113 (Linux cooked) and 101 (raw IP), as tcpdump prints them.
linux_cooked_and_raw(Config) ->
    need("tcpdump"),
    lists:foreach(
      fun(F) ->
              {0, Out, Err} = dump(Config, ["-n", "-r", data(Config, F)]),
              {0, TOut, TErr} = cmd(["tcpdump", "-n", "-r", data(Config, F)]),
              ?assertEqual(lines(TOut), lines(Out)),
              ?assertEqual(lines(TErr), lines(Err)),
              ?assert(length(lines(Out)) >= 2)
      end, ["cooked.pcap", "raw.pcap"]).

%% -v as tcpdump's: the IPv4 header's fields, then an indented second
%% line; the IPv6 header; -e the Ethernet addresses; -x the bytes.
verbose(Config) ->
    {0, Out, _} = dump(Config, ["-n", "-v", "-r", data(Config, "known.pcap")]),
    Lines = lines(Out),
    UdpLines = [<<"22:13:20.003000 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto UDP (17), "
                  "length 33)">>, <<"    10.0.0.1.40000 > 10.0.0.2.5555: UDP, length 5">>],
    ?assertMatch({match, _}, re:run(Out, re_quote(iolist_to_binary(lists:join("\n", UdpLines))))),
    ?assert(lists:any(fun(L) -> binary:match(L, <<"IP6 (flowlabel 0x12345, hlim 64, next-header UDP (17) "
                                                  "payload length: 13) fd00::1.40000 > fd00::2.5555">>) =/= nomatch
                      end, Lines)),
    case os:find_executable("tcpdump") of
        false ->
            ok;
        _ ->
            [begin
                 {0, FOut, _} = cmd(["tcpdump", "-n", F, "-r", data(Config, "known.pcap")]),
                 {0, EOut, _} = dump(Config, ["-n", F, "-r", data(Config, "known.pcap")]),
                 ?assertEqual({F, lines(FOut)}, {F, lines(EOut)})
             end || F <- ["-e", "-x", "-X", "-v"]],
            % tcpdump -v: "IP (tos ...)" opens each IPv4 packet; ours is the same
            {0, TOut, _} = cmd(["tcpdump", "-n", "-v", "-r", data(Config, "known.pcap")]),
            % (its lines for quoted packets start with spaces, not a time)
            Theirs = [ip_head(L) || <<D, _/binary>> = L <- lines(TOut), D >= $0, D =< $9,
                                    ip_head(L) =/= none],
            Ours = [ip_head(L) || <<D, _/binary>> = L <- Lines, D >= $0, D =< $9,
                                  ip_head(L) =/= none],
            % and every line of IPv4 and ARP packets is tcpdump's
            NoV6 = fun(Ls) -> [L || L <- Ls, binary:match(L, [<<"IP6">>, <<"ICMP6">>, <<"  ">>]) =:= nomatch
                                      orelse binary:match(L, <<"IP (">>) =/= nomatch] end,
            ?assertEqual(NoV6(lines(TOut)), NoV6(Lines)),
            ?assertNotEqual([], Ours),
            ?assertEqual(Theirs, Ours)
    end.

ip_head(Line) ->
    case re:run(Line, <<"IP \\(tos [^)]*\\)">>, [{capture, first, binary}]) of
        {match, [H]} -> H;
        nomatch -> none
    end.

%% Without -n, addresses and ports become names: 127.0.0.1 is localhost
%% (/etc/hosts), port 53 is domain (/etc/services).
names(Config) ->
    Dir = ?config(priv_dir, Config),
    File = filename:join(Dir, "names.pcap"),
    write_pcap(File, 1, [{?T0 * 1000000, eth(ipv4(17, {127, 0, 0, 1}, {127, 0, 0, 1},
                                                  udp(40000, 53, <<"abc">>)))}]),
    {0, Numeric, _} = dump(Config, ["-n", "-r", File]),
    ?assertEqual([<<"22:13:20.000000 IP 127.0.0.1.40000 > 127.0.0.1.53: UDP, length 3">>], lines(Numeric)),
    case {inet:gethostbyaddr({127, 0, 0, 1}), services_has_domain()} of
        {{ok, {hostent, Name, _, _, _, _}}, true} ->
            {0, Named, _} = dump(Config, ["-r", File]),
            ?assertEqual([iolist_to_binary(["22:13:20.000000 IP ", Name, ".40000 > ", Name,
                                            ".domain: UDP, length 3"])], lines(Named));
        Other ->
            {skip, lists:flatten(io_lib:format("no name for 127.0.0.1 or port 53: ~p", [Other]))}
    end.

services_has_domain() ->
    case file:read_file("/etc/services") of
        {ok, B} -> re:run(B, <<"^domain\\s+53/udp">>, [multiline]) =/= nomatch;
        _ -> false
    end.

count_on_read(Config) ->
    {0, Out, _} = dump(Config, ["-n", "-c", "3", "-r", data(Config, "known.pcap")]),
    ?assertEqual(lists:sublist(known(Config), 3), lines(Out)),
    {0, Out, _} = dump(Config, ["-nc3", "-r", data(Config, "known.pcap")]).

%% -r - reads standard input.
read_stdin(Config) ->
    {0, Out, Err} = dump(Config, ["-n", "-r", "-"], [{stdin, data(Config, "known.pcap")}]),
    ?assertEqual(known(Config), lines(Out)),
    ?assertMatch([<<"reading from file -, link-type EN10MB", _/binary>>], lines(Err)).

%% -r FILE -w OUT rewrites the file: from a little-endian microsecond file
%% the same bytes, from a big-endian nanosecond one the same records.
rewrite_identical(Config) ->
    Dir = ?config(priv_dir, Config),
    Out = filename:join(Dir, "rewritten.pcap"),
    {0, <<>>, _} = dump(Config, ["-r", data(Config, "known.pcap"), "-w", Out]),
    ?assertEqual(read(data(Config, "known.pcap")), read(Out)),
    {0, <<>>, _} = dump(Config, ["-r", data(Config, "known-be-ns.pcap"), "-w", Out]),
    ?assertEqual(read(data(Config, "known.pcap")), read(Out)),
    % and to standard output
    {0, Stdout, _} = dump(Config, ["-r", data(Config, "known.pcap"), "-w", "-"]),
    ?assertEqual(read(data(Config, "known.pcap")), Stdout).

%% -r with a filter: the daemon reads the file with pcap's compiler.
read_filter(Config) ->
    Known = known(Config),
    {0, Out, _} = dump(Config, ["-n", "-r", data(Config, "known.pcap"), "icmp", "or", "arp"]),
    Expect = [L || L <- Known, binary:match(L, [<<"ICMP ">>, <<"ARP,">>]) =/= nomatch],
    ?assertNotEqual([], Expect),
    ?assertEqual(Expect, lines(Out)),
    % a filter with -w: a savefile of the selected packets
    Dir = ?config(priv_dir, Config),
    OutFile = filename:join(Dir, "filtered.pcap"),
    {0, _, _} = dump(Config, ["-r", data(Config, "known.pcap"), "-w", OutFile, "-c", "2", "tcp"]),
    {ok, 1, _, Recs} = ewpcap_pcap_file:read_file(OutFile),
    ?assertEqual(2, length(Recs)),
    {0, Txt, _} = dump(Config, ["-n", "-r", OutFile]),
    ?assertEqual(lists:sublist([L || L <- Known, binary:match(L, <<"Flags [">>) =/= nomatch], 2),
                 lines(Txt)).

read_bad_filter(Config) ->
    {2, <<>>, Err} = dump(Config, ["-r", data(Config, "known.pcap"), "udp", "porrt", "53"]),
    ?assertMatch([<<"ewpcap_dump: bad filter expression 'udp porrt 53': ", _/binary>>], lines(Err)).

read_missing_file(Config) ->
    {1, <<>>, Err} = dump(Config, ["-r", "/nonexistent/x.pcap"]),
    ?assertEqual([<<"ewpcap_dump: /nonexistent/x.pcap: no such file or directory">>], lines(Err)),
    Dir = ?config(priv_dir, Config),
    Junk = filename:join(Dir, "junk.pcap"),
    ok = file:write_file(Junk, <<"this is not a savefile at all">>),
    {1, <<>>, Err2} = dump(Config, ["-r", Junk]),
    ?assertEqual([<<"ewpcap_dump: ", (list_to_binary(Junk))/binary, ": not a pcap savefile">>], lines(Err2)).

%% Bad flags: status 2, one line on stderr, nothing on stdout.
bad_flags(Config) ->
    Cases = [
        {["-y"], <<"unknown option -y">>},
        {["--frobnicate"], <<"unknown option --frobnicate">>},
        {["-c"], <<"option -c requires an argument">>},
        {["-c", "0"], <<"invalid -c argument '0'">>},
        {["-c", "many"], <<"invalid -c argument 'many'">>},
        {["-s", "-1"], <<"invalid -s argument '-1'">>},
        {["-s", "300000"], <<"invalid -s argument '300000'">>},
        {["-B", "0"], <<"invalid -B argument '0'">>},
        {["-N", "nohost"], <<"invalid -N argument 'nohost'">>},
        {["--cookie"], <<"option --cookie requires an argument">>},
        {["--immediate=yes"], <<"option --immediate takes no argument">>},
        {["-r", "x.pcap", "-i", "lo"], <<"-r and -i cannot be used together">>}
    ],
    lists:foreach(
      fun({Args, Msg}) ->
              {Status, Out, Err} = dump(Config, Args),
              ?assertEqual({Args, 2, <<>>}, {Args, Status, Out}),
              [Line] = lines(Err),
              ?assertMatch({Args, {match, _}}, {Args, re:run(Line, ["^ewpcap_dump: ", re_quote(Msg)])})
      end, Cases).

help_and_version(Config) ->
    {0, Help, <<>>} = dump(Config, ["-h"]),
    ?assertMatch(<<"Usage: ewpcap_dump ", _/binary>>, Help),
    {0, Help, <<>>} = dump(Config, ["--help"]),
    {0, Vsn, <<>>} = dump(Config, ["--version"]),
    ?assertMatch([<<"ewpcap_dump ", _/binary>>], lines(Vsn)).
