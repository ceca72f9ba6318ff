%%% @doc ICMP in ewpcap_dump's lines, as tcpdump 4.99 prints it (see
%%% ewpcap_dump_fmt_ip, which calls this for protocol 1 and prints the
%%% packet an ICMP error quotes, with -v; ICMPv6 is ewpcap_dump_fmt_icmp6's).
%%% @end
-module(ewpcap_dump_fmt_icmp).

-include("ewpcap_dump_fmt.hrl").

-export([icmp/4]).

-import(ewpcap_dump_fmt_ip, [pr/2, host/2, port/3, ip4/1, ip6/1, cksum/1, should_be/2,
                             hex/1, pad/2, hex4/1, pseudo_cksum/5]).

-type ctx() :: {4 | 6, inet:ip_address(), inet:ip_address(), boolean()}.
%% The IP version, the addresses, whether the packet is a fragment.

%% @doc An ICMP message of `Len' bytes.
-spec icmp(binary(), non_neg_integer(), ctx(), #printer{}) -> #printer{}.
icmp(Bin, Len, {_, _, _, Frag}, P) ->
    case Bin of
        <<Type, Code, Rest0/binary>> ->
            {Sum, Rest} = case Rest0 of
                              <<S0:16, R0/binary>> -> {S0, R0};
                              _ -> {0, <<>>}
                          end,
            case icmp_text(Type, Code, Rest, P) of
                trunc_ret -> ?TRUNC_RET("icmp", P);
                Text -> icmp_rest(Type, Text, Bin, Len, Sum, Rest, Frag, P)
            end;
        _ ->
            ?TRUNC("icmp", P)
    end.

%% After the message's text: -v's checksum and quoted packet.
icmp_rest(Type, Text, Bin, Len, Sum, Rest, Frag, P) ->
    P1 = pr(P, ["ICMP ", Text, ", length ", integer_to_list(Len)]),
    P2 = case P1#printer.verbose > 0 andalso not Frag andalso byte_size(Bin) >= Len of
        true ->
            case cksum(binary:part(Bin, 0, Len)) of
                0 -> P1;
                S -> pr(P1, [" (wrong icmp cksum ", hex(Sum), " (->",
                             hex(should_be(Sum, S)), ")!)"])
            end;
        false ->
            P1
    end,
    % -v: the packet an error quotes
    case P2#printer.verbose > 0 andalso lists:member(Type, [3, 4, 5, 11, 12]) of
        true ->
            case Rest of
                <<_:32, Inner/binary>> ->
                    P3 = pr(P2, "\n\t"),
                    case Inner of
                        <<_:16, IpLen:16, _/binary>> -> ewpcap_dump_fmt_ip:ipv4(Inner, IpLen, P3);
                        _ -> ?TRUNC("icmp", P3)
                    end;
                _ ->
                    ?TRUNC("icmp", P2)
            end;
        false ->
            P2
    end.

%% The inner header's destination, or the end of the packet.
icmp_dst(<<_:20/binary, Dst:4/binary, _/binary>>, P) ->
    {H, _} = host(ip4(Dst), P),
    H;
icmp_dst(_, P) ->
    ?TRUNC("icmp", P).

icmp_text(T, _, <<Id:16, Seq:16, _/binary>>, _) when T =:= 0; T =:= 8 ->
    ["echo ", case T of 8 -> "request"; 0 -> "reply" end, ", id ", integer_to_list(Id),
     ", seq ", integer_to_list(Seq)];
icmp_text(T, _, _, P) when T =:= 0; T =:= 8 ->
    ?TRUNC("icmp", P);
icmp_text(3, Code, R, P) ->
    Dst = icmp_dst(R, P),
    case Code of
        0 -> ["net ", Dst, " unreachable"];
        1 -> ["host ", Dst, " unreachable"];
        2 ->
            <<_:4/binary, _:9/binary, Proto, _/binary>> = R,
            [Dst, " protocol ", integer_to_list(Proto), " unreachable"];
        3 -> icmp_port_unreach(R, Dst, P);
        4 ->
            case R of
                <<_:16, 0:16, _/binary>> -> [Dst, " unreachable - need to frag"];
                <<_:16, Mtu:16, _/binary>> -> [Dst, " unreachable - need to frag (mtu ",
                                               integer_to_list(Mtu), ")"]
            end;
        5 -> [Dst, " unreachable - source route failed"];
        6 -> ["net ", Dst, " unreachable - unknown"];
        7 -> ["host ", Dst, " unreachable - unknown"];
        8 -> [Dst, " unreachable - source host isolated"];
        9 -> ["net ", Dst, " unreachable - admin prohibited"];
        10 -> ["host ", Dst, " unreachable - admin prohibited"];
        11 -> ["net ", Dst, " unreachable - tos prohibited"];
        12 -> ["host ", Dst, " unreachable - tos prohibited"];
        13 -> ["host ", Dst, " unreachable - admin prohibited filter"];
        14 -> ["host ", Dst, " unreachable - host precedence violation"];
        15 -> ["host ", Dst, " unreachable - precedence cutoff"];
        _ -> [Dst, " unreachable - #", integer_to_list(Code)]
    end;
icmp_text(5, Code, <<Gw:4/binary, _/binary>> = R, P) ->
    Dst = icmp_dst(R, P),
    {G, _} = host(ip4(Gw), P),
    case Code of
        0 -> ["redirect ", Dst, " to net ", G];
        1 -> ["redirect ", Dst, " to host ", G];
        2 -> ["redirect-tos ", Dst, " to net ", G];
        3 -> ["redirect-tos ", Dst, " to host ", G];
        _ -> ["redirect-#", integer_to_list(Code), " ", Dst, " to ", G]
    end;
icmp_text(9, _, <<Num, Size, Life:16, Addrs/binary>>, P) ->
    Lifetime = if
                   Life < 60 -> integer_to_list(Life);
                   Life < 3600 -> [integer_to_list(Life div 60), $:, two(Life rem 60)];
                   true -> [integer_to_list(Life div 3600), $:, two(Life rem 3600 div 60), $:,
                            two(Life rem 60)]
               end,
    ["router advertisement lifetime ", Lifetime, $\s, integer_to_list(Num), $:,
     case Size of
         2 -> router_addrs(Num, Addrs, P);
         _ -> [" [size ", integer_to_list(Size), "]"]
     end];
icmp_text(9, _, _, P) ->
    ?TRUNC("icmp", P);
icmp_text(11, _, R, _P) when byte_size(R) < 24 ->
    % tcpdump checks and returns here (no longjmp): -x still skips the
    % link-level header
    trunc_ret;
icmp_text(11, Code, _, _) ->
    case Code of
        0 -> "time exceeded in-transit";
        1 -> "ip reassembly time exceeded";
        _ -> ["time exceeded-#", integer_to_list(Code)]
    end;
icmp_text(12, 0, <<Ptr, _/binary>>, _) -> ["parameter problem - octet ", integer_to_list(Ptr)];
icmp_text(12, Code, _, _) when Code =/= 0 -> ["parameter problem - code ", integer_to_list(Code)];
icmp_text(13, _, <<Id:16, Seq:16, _/binary>>, _) ->
    ["time stamp query id ", integer_to_list(Id), " seq ", integer_to_list(Seq)];
icmp_text(14, _, <<Id:16, Seq:16, Org:32, Recv:32, Xmit:32, _/binary>>, _) ->
    ["time stamp reply id ", integer_to_list(Id), " seq ", integer_to_list(Seq), ": org ",
     tstamp(Org), ", recv ", tstamp(Recv), ", xmit ", tstamp(Xmit)];
icmp_text(18, _, <<_:32, Mask:32, _/binary>>, _) ->
    ["address mask is 0x", pad(integer_to_list(Mask, 16), 8)];
icmp_text(T, _, _, P) when T =:= 12; T =:= 13; T =:= 14; T =:= 18 ->
    ?TRUNC("icmp", P);
icmp_text(Type, _, _, _) ->
    case lists:keyfind(Type, 1, [{4, "source quench"}, {10, "router solicitation"},
                                 {14, "time stamp reply"}, {15, "information request"},
                                 {16, "information reply"}, {17, "address mask request"}]) of
        {_, N} -> N;
        false -> ["type-#", integer_to_list(Type)]
    end.

%% A router advertisement's {address preference} entries.
router_addrs(0, _, _) ->
    [];
router_addrs(Num, <<Addr:4/binary, Pref:32, Rest/binary>>, P) ->
    {A, _} = host(ip4(Addr), P),
    [" {", A, $\s, integer_to_list(Pref), $} | router_addrs(Num - 1, Rest, P)];
router_addrs(_, _, P) ->
    ?TRUNC("icmp", P).

%% Milliseconds since midnight, as H:MM:SS.mmm.
tstamp(Ms) ->
    S = Ms div 1000,
    [two(S div 3600), $:, two(S div 60 rem 60), $:, two(S rem 60), $.,
     tl(integer_to_list(Ms rem 1000 + 1000))].

two(N) when N < 10 -> [$0, $0 + N];
two(N) -> integer_to_list(N).

icmp_port_unreach(<<_:4/binary, _:4, IHL:4, _:8/binary, Proto, _/binary>> = R, Dst, P) ->
    Off = 4 + IHL * 4,
    case R of
        <<_:Off/binary, _:16, DP:16, _/binary>> ->
            case Proto of
                6 -> {S, _} = port(tcp, DP, P), [Dst, " tcp port ", S, " unreachable"];
                17 -> {S, _} = port(udp, DP, P), [Dst, " udp port ", S, " unreachable"];
                _ -> [Dst, " protocol ", integer_to_list(Proto), " port ", integer_to_list(DP),
                      " unreachable"]
            end;
        _ ->
            ?TRUNC("icmp", P)
    end.
