%%% @doc The `-D' listing of ewpcap_dump: each interface numbered, with
%%% its flags and description, then one line per address, as tcpdump -D
%%% with the addresses of ewpcap:getifaddrs/0.
%%% @end
-module(ewpcap_dump_ifaddrs).

-export([format_ifaddrs/1]).

%% @doc The `-D' listing: each interface numbered, with its flags and
%% description, then one line per address.
-spec format_ifaddrs([{string(), [term()]}]) -> iolist().
format_ifaddrs(Ifs) ->
    {Lines, _} = lists:mapfoldl(
                   fun({Name, Attrs}, N) ->
                           {[integer_to_list(N), $., Name, if_flags(Name, Attrs), $\n,
                             [["\t", A, $\n] || A <- if_addrs(Attrs)]], N + 1}
                   end, 1, Ifs),
    Lines.

if_flags(Name, Attrs) ->
    Desc = case proplists:get_value(description, Attrs) of
               undefined -> [];
               D -> [" (", D, ")"]
           end,
    Loop = case proplists:get_value(flag, Attrs, []) of
               Flags when is_list(Flags) ->
                   [" [Loopback]" || lists:member(loopback, Flags)];
               _ ->
                   []
           end,
    _ = Name,
    [Desc, Loop].

%% Each {addr, A} starts an address; netmask, broadaddr and dstaddr
%% belong to the address before them.
if_addrs(Attrs) ->
    Groups = lists:foldl(
               fun({addr, A}, Acc) -> [[{addr, A}] | Acc];
                  ({K, V}, [G | Acc]) when K =:= netmask; K =:= broadaddr; K =:= dstaddr ->
                       [[{K, V} | G] | Acc];
                  (_, Acc) -> Acc
               end, [], Attrs),
    [if_addr(lists:reverse(G)) || G <- lists:reverse(Groups)].

if_addr([{addr, A} | More]) ->
    Family = case tuple_size(A) of
                 4 -> "inet ";
                 _ -> "inet6 "
             end,
    [Family, inet:ntoa(A),
     [[" ", key_word(K), " ", inet:ntoa(V)] || {K, V} <- More]].

key_word(netmask) -> "netmask";
key_word(broadaddr) -> "broadcast";
key_word(dstaddr) -> "destination".
