# The README's Elixir example, run as written (make interop-elixir):
#
#   elixir -pa ebin test/interop/elixir_readme.exs README.md
#
# Takes the ```elixir block of the section "Elixir" of README.md, evaluates
# every `iex>` line in order with the bindings of the lines before, and
# checks the value of each line that the README shows an output for: the
# shown text, where "..." stands for anything, must match inspect/2 of the
# value. UDP port 5555 of the example is replaced by a free one (another run
# on this machine may use 5555). Prints a line per step; exits 1 on the
# first difference or exception.
[readme] = System.argv()

block =
  readme
  |> File.read!()
  |> String.split("\n")
  |> Enum.drop_while(&(&1 != "### Elixir"))
  |> Enum.drop_while(&(&1 != "```elixir"))
  |> Enum.drop(1)
  |> Enum.take_while(&(&1 != "```"))

if block == [], do: (IO.puts("FAIL: no ```elixir block under ### Elixir"); System.halt(1))

{:ok, u} = :gen_udp.open(0)
{:ok, port} = :inet.port(u)
:gen_udp.close(u)

# [{code, expected output or nil}]
steps =
  block
  |> Enum.reject(&String.starts_with?(&1, "$ "))
  |> Enum.reduce([], fn
    "iex> " <> code, acc -> [{String.replace(code, "5555", Integer.to_string(port)), nil} | acc]
    out, [{code, nil} | acc] -> [{code, out} | acc]
    out, _ -> IO.puts("FAIL: output line without an iex> line: #{out}"); System.halt(1)
  end)
  |> Enum.reverse()

matches = fn expected, actual ->
  parts = String.split(expected, "...")
  re = "^" <> Enum.map_join(parts, ".*", &Regex.escape/1) <> "$"
  Regex.match?(Regex.compile!(re, "s"), actual)
end

Enum.reduce(steps, [], fn {code, expected}, binding ->
  {value, binding} =
    try do
      Code.eval_string(code, binding)
    rescue
      e -> IO.puts("FAIL: #{code}\n  raised #{Exception.message(e)}"); System.halt(1)
    end

  actual = inspect(value, limit: :infinity, printable_limit: :infinity)

  case expected do
    nil ->
      IO.puts("ok   #{code}")

    _ ->
      if matches.(expected, actual) do
        IO.puts("ok   #{code}\n       #{expected}")
      else
        IO.puts("FAIL: #{code}\n  README: #{expected}\n  got:    #{actual}")
        System.halt(1)
      end
  end

  binding
end)

IO.puts("RESULT ok: #{length(steps)} lines of the README's Elixir example")
