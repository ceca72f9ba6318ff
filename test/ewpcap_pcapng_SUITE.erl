%%% @doc pcapng and nanosecond time stamps (issue 14, section 1), checked
%%% with the tools users read captures with: tshark, capinfos and editcap
%%% (wireshark-common), tcpdump.
%%%
%%% Group `offline': files written by ewpcap_pcapng (two interfaces, one
%%% in nanoseconds, one in microseconds, with filters, names and
%%% statistics) and by `ewpcap_dump -r known.pcap -w X.pcapng' are read by
%%% every tool with the packets' bytes, lengths and times unchanged; their
%%% blocks are walked here as the specification lays them out; pcapng
%%% written by editcap is read by ewpcap_dump, corrupted copies never crash
%%% the reader; a pcapng to /dev/full and
%%% a bad precision are refused with a message and the documented status.
%%%
%%% Group `live' (root): captures on lo with `{tstamp_precision, nano}'
%%% and `ewpcap_dump --nano': times in nanoseconds (not all multiples of
%%% 1000, where the same capture in microseconds gives only multiples),
%%% the nanosecond magic in pcap files, if_tsresol 9 and the interface
%%% `Node:lo' in pcapng. Traffic goes only to 127.0.0.1 on lo, on ports
%%% chosen here.
%%%
%%% Commands run as in ewpcap_dump_SUITE: TZ=UTC, output to files, the
%%% exit status checked.
%%% @end
-module(ewpcap_pcapng_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-compile([export_all, nowarn_export_all]).

-import(ewpcap_dump_helpers, [root/0, dump_path/0, data_dir/0, data/2, lines/1, dump/2, cmd/1,
                              start/2, start_cmd/1, start_sh/2, get_procs/0, quote/1,
                              wait_listening/1, wait_until/2, wait_exit/2, stop_proc/1,
                              udp_receiver/0, send_udp/3]).

-define(SHB, 16#0A0D0D0A).
-define(NS_EXTRA, 123).   % nanoseconds added to known.pcap's microsecond times

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [{group, offline}, {group, live}].

groups() ->
    [
        {offline, [], [
            writer_read_by_tools,
            writer_bytes_and_times_exact,
            writer_block_layout,
            dump_rewrites_pcapng,
            read_pcapng_of_editcap,
            read_mutated_pcapng,
            pcapng_to_full_disk,
            bad_precision
        ]},
        {live, [], [
            open_nano_times,
            open_file_nano,
            dump_live_pcapng_nano,
            dump_live_pcap_nano_magic
        ]}
    ].

init_per_suite(Config) ->
    [begin
         os:find_executable(T) =/= false orelse ct:fail({not_installed, T})
     end || T <- ["tshark", "capinfos", "editcap", "tcpdump"]],
    Dump = dump_path(),
    case filelib:is_regular(Dump) of
        true -> [{dump, Dump}, {data, data_dir()} | Config];
        false -> ct:fail("bin/ewpcap_dump not built (make)")
    end.

end_per_suite(_Config) ->
    ok.

init_per_group(live, Config) ->
    case root() of
        false -> {skip, "live captures need root"};
        true -> Config
    end;
init_per_group(_, Config) ->
    Config.

end_per_group(_, _Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    [stop_proc(P) || P <- get_procs()],
    _ = erase(procs),
    ok.

%%% ===================================================================
%%% Offline
%%% ===================================================================

writer_read_by_tools() ->
    [{doc, "A two-interface pcapng of ewpcap_pcapng: tshark, capinfos and tcpdump read it, "
      "with the interfaces' names, descriptions, filters, resolutions and statistics"}].
writer_read_by_tools(Config) ->
    {File, Recs} = two_interfaces(Config),
    N = length(Recs),
    {0, SText, SErr} = cmd(["tshark", "-n", "-r", File]),
    ?assertEqual(<<>>, strip_root_warning(SErr)),
    ?assertEqual(N, length(lines(SText))),
    {0, Info, _} = cmd(["capinfos", File]),
    ct:pal("~ts", [Info]),
    [?assertMatch({match, _}, re:run(Info, Re, [multiline]), Re) || Re <- [
        "^File type: +Wireshark/... - pcapng$",
        "^Number of packets: +" ++ integer_to_list(N) ++ "$",
        "^Number of interfaces in file: 2$",
        "^Capture application: +ewpcap_pcapng_SUITE$",
        <<"Interface #0 info:\\n +Name = ewp@hosta:eth0\\n +Description = first \x{20ac}\\n"/utf8>>,
        "Interface #1 info:\\n +Name = ewp@hostb:lo\\n",
        "Time precision = nanoseconds \\(9\\)",
        "Time precision = microseconds \\(6\\)",
        "Filter string = tcp or arp$",
        "Operating system = Linux$",
        "Number of stat entries = 1\\n +Number of packets = " ++ integer_to_list(N div 2) ++ "$"]],
    % the interface of each packet, in order
    {0, Names, _} = cmd(["tshark", "-r", File, "-T", "fields", "-e", "frame.interface_name"]),
    {A, _} = lists:split(N div 2, Recs),
    ?assertEqual([<<"ewp@hosta:eth0">> || _ <- A] ++ [<<"ewp@hostb:lo">> || _ <- lists:nthtail(N div 2, Recs)],
                 lines(Names)),
    % tcpdump reads it, as the original
    {0, TText, _} = cmd(["tcpdump", "-n", "-r", File]),
    {0, KText, _} = cmd(["tcpdump", "-n", "-r", data(Config, "known.pcap")]),
    ?assertEqual(lines(KText), lines(TText)).

writer_bytes_and_times_exact() ->
    [{doc, "editcap turns our pcapng into pcap with every packet's bytes and length; "
      "tshark shows the nanosecond times as written, our reader too"}].
writer_bytes_and_times_exact(Config) ->
    {File, Recs} = two_interfaces(Config),
    Pcap = filename:join(?config(priv_dir, Config), "back.pcap"),
    {0, _, _} = cmd(["editcap", "-F", "pcap", File, Pcap]),
    {ok, 1, _, Back} = ewpcap_pcap_file:read_file(Pcap),
    ?assertEqual([{L, P} || {_, L, P} <- Recs], [{L, P} || {_, L, P} <- Back]),
    {0, Times, _} = cmd(["tshark", "-r", File, "-T", "fields", "-e", "frame.time_epoch"]),
    Expect = [fmt_ns(T * 1000 + ?NS_EXTRA) || {T, _, _} <- element(1, lists:split(length(Recs) div 2, Recs))]
        ++ [fmt_ns(T * 1000) || {T, _, _} <- lists:nthtail(length(Recs) div 2, Recs)],
    ?assertEqual(Expect, [B || B <- lines(Times)]),
    % our reader, in nanoseconds
    {ok, R} = ewpcap_pcap_file:open_read(File, #{precision => nano}),
    ?assertEqual([{T * 1000 + ?NS_EXTRA, L, P} || {T, L, P} <- element(1, lists:split(length(Recs) div 2, Recs))]
                 ++ [{T * 1000, L, P} || {T, L, P} <- lists:nthtail(length(Recs) div 2, Recs)],
                 read_all(R)).

writer_block_layout() ->
    [{doc, "The blocks as the specification lays them out: total length at both ends, "
      "a multiple of 4; byte-order magic 0x1A2B3C4D, version 1.0; options padded, ending "
      "with opt_endofopt; EPB data padded to 32 bits; ISB counts"}].
writer_block_layout(Config) ->
    {File, Recs} = two_interfaces(Config),
    {ok, Bin} = file:read_file(File),
    Blocks = walk(Bin),
    Types = [T || {T, _} <- Blocks],
    N = length(Recs),
    ?assertEqual([?SHB, 1, 1] ++ lists:duplicate(N, 6) ++ [5, 5], Types),
    [{?SHB, <<16#1A2B3C4D:32/native, 1:16/native, 0:16/native, -1:64/signed-native, ShbOpts/binary>>} | _] = Blocks,
    ?assertEqual(#{1 => [<<"a comment">>], 4 => [<<"ewpcap_pcapng_SUITE">>]},
                 maps:with([1, 4], options(ShbOpts))),
    [{1, <<1:16/native, 0:16, 262144:32/native, If0/binary>>},
     {1, <<1:16/native, 0:16, 262144:32/native, If1/binary>>}] = lists:sublist(Blocks, 2, 2),
    ?assertMatch(#{2 := [<<"ewp@hosta:eth0">>], 3 := [<<"first \x{20ac}"/utf8>>], 9 := [<<9>>],
                   11 := [<<0, "tcp or arp">>], 12 := [<<"Linux">>]}, options(If0)),
    ?assertMatch(#{2 := [<<"ewp@hostb:lo">>], 9 := [<<6>>]}, options(If1)),
    % each EPB: interface, time, lengths, the packet padded to 32 bits
    Epbs = [B || {6, B} <- Blocks],
    lists:foreach(
      fun({Idx, {{T, L, P}, Epb}}) ->
              If = case Idx =< N div 2 of true -> 0; false -> 1 end,
              Time = case If of 0 -> T * 1000 + ?NS_EXTRA; 1 -> T end,
              Cap = byte_size(P),
              Pad = (4 - Cap rem 4) rem 4,
              ?assertEqual(<<If:32/native, (Time bsr 32):32/native, (Time band 16#FFFFFFFF):32/native,
                             Cap:32/native, L:32/native, P/binary, 0:(Pad * 8)>>, Epb)
      end, lists:zip(lists:seq(1, N), lists:zip(Recs, Epbs))),
    [<<0:32/native, _:64, Isb0/binary>>, <<1:32/native, _:64, Isb1/binary>>] = [B || {5, B} <- Blocks],
    ?assertEqual(#{4 => [<<1000000:64/native>>], 5 => [<<300:64/native>>]}, options(Isb0)),
    ?assertEqual(#{4 => [<<50:64/native>>], 5 => [<<0:64/native>>], 8 => [<<11:64/native>>]},
                 options(Isb1)).

dump_rewrites_pcapng() ->
    [{doc, "ewpcap_dump -r known.pcap -w X.pcapng, --pcapng -w -: pcapng that tshark, "
      "capinfos and tcpdump read, packets unchanged; ewpcap_dump -r reads it back, "
      "also with a filter (the daemon's libpcap)"}].
dump_rewrites_pcapng(Config) ->
    Known = data(Config, "known.pcap"),
    Out = filename:join(?config(priv_dir, Config), "rewritten.pcapng"),
    {0, <<>>, _} = dump(Config, ["-r", Known, "-w", Out]),
    {ok, Bin} = file:read_file(Out),
    ?assertMatch(<<?SHB:32, _/binary>>, Bin),
    {0, Info, _} = cmd(["capinfos", Out]),
    ?assertMatch({match, _}, re:run(Info, "^Number of interfaces in file: 1$", [multiline])),
    ?assertMatch({match, _}, re:run(Info, "Description = read from .*known.pcap", [multiline])),
    {0, TText, _} = cmd(["tcpdump", "-n", "-r", Out]),
    {0, KText, _} = cmd(["tcpdump", "-n", "-r", Known]),
    ?assertEqual(lines(KText), lines(TText)),
    {ok, 1, _, Orig} = ewpcap_pcap_file:read_file(Known),
    {ok, 1, _, Back} = ewpcap_pcap_file:read_file(Out),
    ?assertEqual(Orig, Back),
    % read back by ewpcap_dump, with and without a filter
    {0, EText, _} = dump(Config, ["-n", "-r", Out]),
    ?assertEqual(lines(KText), lines(EText)),
    {0, FText, _} = dump(Config, ["-n", "-r", Out, "tcp"]),
    {0, KFText, _} = cmd(["tcpdump", "-n", "-r", Known, "tcp"]),
    ?assertEqual(lines(KFText), lines(FText)),
    ?assert(length(lines(FText)) > 0 andalso length(lines(FText)) < length(lines(KText))),
    % --pcapng to standard output, into tshark
    P = start_sh([quote(?config(dump, Config)), " -r ", quote(Known), " --pcapng -w - | tshark -r - -n"],
                    ?config(priv_dir, Config)),
    {0, SText, _} = wait_exit(P, 60000),
    ?assertEqual(length(lines(KText)), length(lines(SText))).

read_pcapng_of_editcap() ->
    [{doc, "ewpcap_dump -r reads pcapng that Wireshark's editcap wrote (nanosecond "
      "resolution too) as tcpdump reads the original"}].
read_pcapng_of_editcap(Config) ->
    Known = data(Config, "known.pcap"),
    {0, KText, _} = cmd(["tcpdump", "-n", "-r", Known]),
    Ng = filename:join(?config(priv_dir, Config), "editcap.pcapng"),
    {0, _, _} = cmd(["editcap", "-F", "pcapng", Known, Ng]),
    {0, EText, _} = dump(Config, ["-n", "-r", Ng]),
    ?assertEqual(lines(KText), lines(EText)),
    % from a nanosecond pcap, editcap writes if_tsresol 9
    NgNs = filename:join(?config(priv_dir, Config), "editcap-ns.pcapng"),
    {0, _, _} = cmd(["editcap", "-F", "pcapng", data(Config, "known-be-ns.pcap"), NgNs]),
    {0, NsInfo, _} = cmd(["capinfos", NgNs]),
    ?assertMatch({match, _}, re:run(NsInfo, "Time precision = nanoseconds \\(9\\)")),
    {0, EText2, _} = dump(Config, ["-n", "-r", NgNs]),
    ?assertEqual(lines(KText), lines(EText2)).

read_mutated_pcapng() ->
    [{doc, "3000 truncated or corrupted copies of a pcapng (a fixed seed): the reader "
      "returns packets or an error text, never crashes; ewpcap_dump -r of a truncated "
      "one: status 1 and one line"}].
read_mutated_pcapng(Config) ->
    {File, _} = two_interfaces(Config),
    {ok, B} = file:read_file(File),
    Size = byte_size(B),
    Mut = filename:join(?config(priv_dir, Config), "mutated.pcapng"),
    _ = rand:seed(exsss, {14, 14, 14}),
    Bad = lists:filtermap(
            fun(I) ->
                    M = case I rem 3 of
                            0 -> binary:part(B, 0, I rem Size);
                            1 -> P = rand:uniform(Size) - 1,
                                 <<H:P/binary, _, T/binary>> = B,
                                 <<H/binary, (rand:uniform(256) - 1), T/binary>>;
                            2 -> P = rand:uniform(Size - 4) - 1,
                                 <<H:P/binary, _:32, T/binary>> = B,
                                 <<H/binary, (rand:uniform(16#FFFFFFFF)):32, T/binary>>
                        end,
                    ok = file:write_file(Mut, M),
                    try ewpcap_pcap_file:read_file(Mut) of
                        {ok, _, _, _} -> false;
                        {error, [_ | _]} -> false;
                        Other -> {true, {I, Other}}
                    catch
                        C:R:St -> {true, {I, C, R, hd(St)}}
                    end
            end, lists:seq(1, 3000)),
    ?assertEqual([], lists:sublist(Bad, 5)),
    ok = file:write_file(Mut, binary:part(B, 0, Size - 30)),
    {1, _, Err} = dump(Config, ["-n", "-r", Mut]),
    ?assertMatch([<<"reading from file ", _/binary>>, <<"ewpcap_dump: ", _/binary>>], lines(Err)),
    ?assertMatch({match, _}, re:run(Err, "truncated record$", [multiline])).

pcapng_to_full_disk() ->
    [{doc, "A pcapng (or pcap) to /dev/full: status 1, one line naming the file and "
      "the error"}].
pcapng_to_full_disk(Config) ->
    Known = data(Config, "known.pcap"),
    {1, <<>>, Err} = dump(Config, ["-r", Known, "--pcapng", "-w", "/dev/full"]),
    ?assertEqual([<<"ewpcap_dump: /dev/full: no space left on device">>],
                 [L || L <- lines(Err), binary:match(L, <<"reading from">>) =:= nomatch]),
    {1, <<>>, Err2} = dump(Config, ["-r", Known, "--nano", "-w", "/dev/full"]),
    ?assertMatch({match, _}, re:run(Err2, "^ewpcap_dump: /dev/full: no space left on device$",
                                    [multiline])).

bad_precision() ->
    [{doc, "An unknown precision: badarg naming the option from ewpcap:open/2, exit 2 "
      "with one line from ewpcap_dump; --pcapng without -w is a usage error"}].
bad_precision(Config) ->
    {'EXIT', {badarg, [{ewpcap_opts, open, _, Info} | _]}} =
        (catch ewpcap:open(<<"lo">>, [{tstamp_precision, pico}])),
    ?assertMatch(#{cause := {option, {tstamp_precision, pico}}},
                 proplists:get_value(error_info, Info)),
    ?assertError(badarg, ewpcap:open(<<"lo">>, [{tstamp_precision, "nano"}])),
    ?assertError(badarg, ewpcap:open(<<"lo">>, [{time_unit, picosecond}])),
    ?assertEqual(#{1 => "option tstamp_precision: pico is not micro or nano"},
                 ewpcap_opts:format_error(badarg, [{ewpcap_opts, open, [[{tstamp_precision, pico}]],
                                                    [{error_info, #{module => ewpcap_opts,
                                                                    cause => {option, {tstamp_precision, pico}}}}]}])),
    {2, <<>>, Err} = dump(Config, ["--time-stamp-precision", "pico", "-r",
                                      data(Config, "known.pcap")]),
    ?assertEqual([<<"ewpcap_dump: invalid --time-stamp-precision argument 'pico': micro or nano">>],
                 lines(Err)),
    {2, <<>>, Err2} = dump(Config, ["--pcapng", "-r", data(Config, "known.pcap")]),
    ?assertEqual([<<"ewpcap_dump: --pcapng is for -w">>], lines(Err2)).

%%% ===================================================================
%%% Live, on lo
%%% ===================================================================

open_nano_times() ->
    [{doc, "{tstamp_precision, nano}: Time is integer nanoseconds (not all multiples of "
      "1000, near now, the microseconds of a micro capture of the same packets); with "
      "{time_unit, timestamp} the tuple; micro precision in nanoseconds: all multiples "
      "of 1000"}].
open_nano_times(_Config) ->
    {Rx, Port} = udp_receiver(),
    Filter = "udp port " ++ integer_to_list(Port),
    {ok, Nano} = ewpcap:open(<<"lo">>, [{filter, Filter}, {tstamp_precision, nano}]),
    {ok, Micro} = ewpcap:open(<<"lo">>, [{filter, Filter}, {time_unit, nanosecond}]),
    {ok, Tuple} = ewpcap:open(<<"lo">>, [{filter, Filter}, {tstamp_precision, nano},
                                          {time_unit, timestamp}]),
    Payload = <<"nano", (rand:bytes(8))/binary>>,
    send_udp(Port, 20, Payload),
    Now = os:system_time(nanosecond),
    NanoTimes = times(Nano, 20),
    MicroTimes = times(Micro, 20),
    TupleTimes = times(Tuple, 20),
    [ok = ewpcap:close(S) || S <- [Nano, Micro, Tuple]],
    gen_udp:close(Rx),
    ct:pal("nano ~p~nmicro ~p", [NanoTimes, MicroTimes]),
    [?assert(is_integer(T) andalso abs(Now - T) < 10000000000) || {T, _} <- NanoTimes],
    ?assert(lists:any(fun({T, _}) -> T rem 1000 =/= 0 end, NanoTimes)),
    [?assert(is_integer(T) andalso T rem 1000 =:= 0) || {T, _} <- MicroTimes],
    % the kernel stamps a packet once: the same time, to the microsecond
    ?assertEqual([T div 1000 || {T, _} <- MicroTimes], [T div 1000 || {T, _} <- NanoTimes]),
    [?assertMatch({{_, _, _}, _}, X) || X <- TupleTimes],
    % the same packets, in both
    ?assertEqual([P || {_, P} <- NanoTimes], [P || {_, P} <- MicroTimes]),
    [?assertEqual(Payload, binary:part(P, byte_size(P), -byte_size(Payload))) || {_, P} <- NanoTimes].

open_file_nano() ->
    [{doc, "open({file, Path}, [{tstamp_precision, nano}]) reads a pcapng with nanosecond "
      "times through libpcap: the times as written; micro: truncated"}].
open_file_nano(Config) ->
    {ok, 1, _, Half} = ewpcap_pcap_file:read_file(data(Config, "known.pcap")),
    One = filename:join(?config(priv_dir, Config), "one.pcapng"),
    {ok, W} = ewpcap_pcapng:open_write(One, #{}),
    {ok, 0, W1} = ewpcap_pcapng:add_interface(W, #{linktype => 1, snaplen => 262144, tsresol => 9}),
    {ok, W2} = ewpcap_pcapng:write(W1, 0, [{T * 1000 + ?NS_EXTRA, L, P} || {T, L, P} <- Half]),
    ok = ewpcap_pcapng:close_write(W2),
    {ok, S} = ewpcap:open({file, One}, [{tstamp_precision, nano}]),
    Nano = file_times(S),
    {ok, S2} = ewpcap:open({file, One}, [{time_unit, microsecond}]),
    Micro = file_times(S2),
    ?assertEqual([{T * 1000 + ?NS_EXTRA, P} || {T, _, P} <- Half], Nano),
    ?assertEqual([{T, P} || {T, _, P} <- Half], Micro).

dump_live_pcapng_nano() ->
    [{doc, "ewpcap_dump -i lo --nano -w X.pcapng: capinfos shows one interface NODE:lo in "
      "nanoseconds with its filter and statistics; tshark names it per packet; the "
      "times and bytes of tcpdump --time-stamp-precision=nano, not all multiples of "
      "1000; tcpdump reads it; the ISB counts"}].
dump_live_pcapng_nano(Config) ->
    {Rx, Port} = udp_receiver(),
    Filter = "udp port " ++ integer_to_list(Port),
    Out = filename:join(?config(priv_dir, Config), "live.pcapng"),
    Theirs = filename:join(?config(priv_dir, Config), "tcpdump-nano.pcap"),
    T = start_cmd(["tcpdump", "-i", "lo", "-Z", "root", "--time-stamp-precision=nano", "-c", "10",
                   "-U", "-w", Theirs, Filter]),
    P = start(Config, ["-i", "lo", "--nano", "-c", "10", "-w", Out, Filter]),
    ok = wait_listening(P),
    ok = wait_listening(T),
    send_udp(Port, 10, <<"live pcapng">>),
    {0, <<>>, Err} = wait_exit(P, 60000),
    {0, _, _} = wait_exit(T, 60000),
    gen_udp:close(Rx),
    ct:pal("~ts", [Err]),
    {0, Info, _} = cmd(["capinfos", Out]),
    ct:pal("~ts", [Info]),
    [?assertMatch({match, _}, re:run(Info, Re, [multiline]), Re) || Re <- [
        "^Number of packets: +10$",
        "^Number of interfaces in file: 1$",
        "Name = [^:@\\s]+@[^:\\s]+:lo$",
        "Time precision = nanoseconds \\(9\\)",
        "Filter string = " ++ Filter ++ "$",
        "Number of stat entries = 1$"]],
    {0, Names, _} = cmd(["tshark", "-r", Out, "-T", "fields", "-e", "frame.interface_name"]),
    [First | _] = Lines = lines(Names),
    ?assertEqual(10, length(Lines)),
    ?assertMatch({match, _}, re:run(First, "^ewpcapd_[0-9]+_[0-9]+@[^:]+:lo$")),
    ?assertEqual([First], lists:usort(Lines)),
    {ok, R} = ewpcap_pcap_file:open_read(Out, #{precision => nano}),
    Recs = read_all(R),
    ?assertEqual(10, length(Recs)),
    ?assert(lists:any(fun({Ns, _, _}) -> Ns rem 1000 =/= 0 end, Recs)),
    [?assertEqual(<<"live pcapng">>, binary:part(B, byte_size(B), -11)) || {_, _, B} <- Recs],
    % tcpdump's nanosecond capture of the same packets: the same times and bytes
    {ok, R2} = ewpcap_pcap_file:open_read(Theirs, #{precision => nano}),
    ?assertEqual(read_all(R2), Recs),
    {0, TText, _} = cmd(["tcpdump", "-n", "-r", Out]),
    ?assertEqual(10, length(lines(TText))),
    % the statistics at the end: received by the filter, 10 written
    {ok, Bin} = file:read_file(Out),
    [<<0:32/native, _:64, Isb/binary>>] = [B || {5, B} <- walk(Bin)],
    #{4 := [<<Recv:64/native>>], 5 := [<<_Drop:64/native>>], 8 := [<<10:64/native>>]} = options(Isb),
    ?assert(Recv >= 10).

dump_live_pcap_nano_magic() ->
    [{doc, "ewpcap_dump -i lo --nano -w X.pcap: the nanosecond magic 0xa1b23c4d, "
      "times not all multiples of 1000 (tcpdump prints them to the nanosecond), the "
      "microseconds of a capture without --nano, which has the microsecond magic"}].
dump_live_pcap_nano_magic(Config) ->
    {Rx, Port} = udp_receiver(),
    Filter = "udp port " ++ integer_to_list(Port),
    Nano = filename:join(?config(priv_dir, Config), "nano.pcap"),
    Micro = filename:join(?config(priv_dir, Config), "micro.pcap"),
    P1 = start(Config, ["-i", "lo", "--time-stamp-precision=nano", "-c", "10", "-w", Nano, Filter]),
    P2 = start(Config, ["-i", "lo", "-c", "10", "-w", Micro, Filter]),
    ok = wait_listening(P1),
    ok = wait_listening(P2),
    send_udp(Port, 10, <<"nano pcap">>),
    {0, <<>>, _} = wait_exit(P1, 60000),
    {0, <<>>, _} = wait_exit(P2, 60000),
    gen_udp:close(Rx),
    {ok, <<NMagic:4/binary, _/binary>>} = file:read_file(Nano),
    {ok, <<MMagic:4/binary, _/binary>>} = file:read_file(Micro),
    ?assertEqual(<<16#a1b23c4d:32/native>>, NMagic),
    ?assertEqual(<<16#a1b2c3d4:32/native>>, MMagic),
    {0, TText, _} = cmd(["tcpdump", "-n", "--time-stamp-precision=nano", "-r", Nano]),
    Fracs = [F || L <- lines(TText),
                  {match, [F]} <- [re:run(L, "^\\d\\d:\\d\\d:\\d\\d\\.(\\d{9}) ", [{capture, all_but_first, binary}])]],
    ?assertEqual(10, length(Fracs)),
    ?assert(lists:any(fun(F) -> binary:part(F, 6, 3) =/= <<"000">> end, Fracs)),
    {ok, R} = ewpcap_pcap_file:open_read(Nano, #{precision => nano}),
    {ok, RM} = ewpcap_pcap_file:open_read(Micro, #{precision => micro}),
    NanoRecs = read_all(R),
    % the same packets, stamped once by the kernel: the same microseconds
    ?assertEqual([{T div 1000, L, B} || {T, L, B} <- NanoRecs], read_all(RM)).

%%% ===================================================================
%%% Helpers
%%% ===================================================================

%% known.pcap's packets in a pcapng: the first half on interface 0
%% (nanoseconds, the times plus 123 ns), the rest on interface 1
%% (microseconds), with statistics for both.
two_interfaces(Config) ->
    {ok, 1, Snap, Recs} = ewpcap_pcap_file:read_file(data(Config, "known.pcap")),
    File = filename:join(?config(priv_dir, Config), "two.pcapng"),
    {ok, W} = ewpcap_pcapng:open_write(File, #{userappl => "ewpcap_pcapng_SUITE", comment => "a comment"}),
    {ok, 0, W1} = ewpcap_pcapng:add_interface(W, #{linktype => 1, snaplen => Snap, name => "ewp@hosta:eth0",
                                                   description => "first \x{20ac}", tsresol => 9,
                                                   filter => "tcp or arp", os => "Linux"}),
    {ok, 1, W2} = ewpcap_pcapng:add_interface(W1, #{linktype => 1, snaplen => Snap, name => "ewp@hostb:lo",
                                                    tsresol => 6}),
    {A, B} = lists:split(length(Recs) div 2, Recs),
    {ok, W3} = ewpcap_pcapng:write(W2, 0, [{T * 1000 + ?NS_EXTRA, L, P} || {T, L, P} <- A]),
    {ok, W4} = ewpcap_pcapng:write(W3, 1, B),
    % counts with bytes past 127: options hold bytes, not text
    ok = ewpcap_pcapng:close_write(W4, [{0, #{recv => 1000000, drop => 300}},
                                        {1, #{recv => 50, drop => 0, delivered => 11}}]),
    {File, Recs}.

fmt_ns(Ns) ->
    iolist_to_binary(io_lib:format("~b.~9..0b", [Ns div 1000000000, Ns rem 1000000000])).

read_all(R) ->
    case ewpcap_pcap_file:read(R) of
        {ok, Rec, R1} -> [Rec | read_all(R1)];
        eof -> ewpcap_pcap_file:close_read(R), []
    end.

%% The blocks of a pcapng file, checked: {Type, Body}.
walk(<<>>) ->
    [];
walk(<<Type:32/native, Len:32/native, Rest/binary>>) ->
    ?assertEqual(0, Len rem 4),
    BodyLen = Len - 12,
    <<Body:BodyLen/binary, Trailer:32/native, More/binary>> = Rest,
    ?assertEqual(Len, Trailer),
    [{Type, Body} | walk(More)].

%% Options: code => [values]; they must end with opt_endofopt and
%% nothing after it, each padded to 32 bits with zeros.
options(<<0:16, 0:16>>) ->
    #{};
options(<<Code:16/native, Len:16/native, Rest/binary>>) ->
    Pad = (4 - Len rem 4) rem 4,
    <<Value:Len/binary, 0:(Pad * 8), More/binary>> = Rest,
    maps:update_with(Code, fun(Vs) -> Vs ++ [Value] end, [Value], options(More)).

%% The first N packets of socket S: {Time, Packet}.
times(#ewpcap_resource{ref = Ref}, N) ->
    [receive
         {ewpcap, Ref, _, T, _, P} -> {T, P}
     after 10000 -> ct:fail({missing_packet, I})
     end || I <- lists:seq(1, N)].

%% The packets of savefile socket S up to its end: {Time, Packet}.
file_times(#ewpcap_resource{ref = Ref} = S) ->
    receive
        {ewpcap, Ref, _, T, _, P} -> [{T, P} | file_times(S)];
        {ewpcap_eof, Ref} -> ok = ewpcap:close(S), []
    after 10000 -> ct:fail(no_eof)
    end.

strip_root_warning(Err) ->
    iolist_to_binary(re:replace(Err, "Running as user \"root\" and group \"root\". This could be dangerous.\\n?", "")).
