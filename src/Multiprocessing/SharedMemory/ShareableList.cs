using System.Buffers.Binary;
using System.Collections;
using System.Globalization;
using System.Text;

namespace Multiprocessing;

/// <summary>
/// A list of fixed length in one shared-memory block, like Python's <c>multiprocessing.shared_memory.ShareableList</c>,
/// in CPython's exact layout: a list made here is read and written by Python's <c>ShareableList(name=...)</c>, and a
/// list made by Python attaches here with <see cref="Attach"/>. Items are <see cref="long"/> (Python <c>int</c>;
/// <see cref="int"/> and the other integer types are widened to it), <see cref="double"/> (<c>float</c>),
/// <see cref="bool"/>, <see cref="string"/> (<c>str</c>, stored as UTF-8), <see cref="byte"/>[] (<c>bytes</c>) and
/// <see langword="null"/> (<c>None</c>).
/// <code>
/// using var list = ShareableList.Create([42, 2.5, "hello", new byte[] { 1, 2 }, true, null]);
/// list[0] = 43;              // every process attached to list.Name sees it
/// list[2] = "hi";            // a string or bytes must fit the slot its first value sized
/// </code>
/// </summary>
/// <remarks>
/// <para>
/// As in Python, the length never changes, and each string or byte-array slot keeps the room its first value
/// gave it: the UTF-8 length rounded up to the next multiple of 8 (one more 8 when it already is one, so
/// <c>"hi"</c> holds up to 8 bytes and a 16-byte string up to 24). A longer value is refused with an
/// <see cref="ArgumentException"/> (Python's <c>ValueError: bytes/str item exceeds available storage</c>);
/// create the list with a long enough placeholder there instead. Any slot takes a number, <c>bool</c> or
/// <c>null</c>; a number slot takes a string or bytes of up to 8 bytes.
/// </para>
/// <para>
/// Trailing zero bytes of a string or byte array are not kept, as in Python (<c>rstrip(b'\x00')</c> on reading).
/// Python sizes a new string's slot by its characters, this library by its UTF-8 bytes, which is more room for
/// non-ASCII text (and never cuts a character); both read either's lists. There is no lock: concurrent writers
/// of one item need a <see cref="ProcessLock"/>.
/// </para>
/// <para>
/// The list travels to a worker (captured or passed as an argument) by name and arrives attached. The creator
/// owns the block: its <see cref="Dispose"/> unlinks it; see <see cref="SharedMemory"/> for lifetimes.
/// </para>
/// </remarks>
public sealed class ShareableList : IReadOnlyList<object?>, IDisposable
{
    private const int Alignment = 8;
    // CPython keeps each item's struct format in 8 bytes: "9999992s" is the largest slot whose format fits.
    private const int MaxSlotBytes = 9_999_992;
    private const sbyte CodeValue = 0, CodeString = 1, CodeBytes = 2, CodeNone = 3;
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly SharedMemory _shm;
    // Where each item's slot starts, from the start of the data area, and (last) where the data area ends: CPython's _allocated_offsets.
    private readonly long[] _offsets;

    private ShareableList(SharedMemory shm, long[] offsets)
    {
        _shm = shm;
        _offsets = offsets;
        Count = offsets.Length - 1;
    }

    /// <summary>
    /// Creates a list holding <paramref name="items"/> in a new shared-memory block (Python: <c>ShareableList(items)</c>).
    /// With no <paramref name="name"/>, a fresh one like CPython's (<c>psm_</c> and random hex digits) is chosen.
    /// </summary>
    /// <param name="items">The items: <see cref="long"/> (or another integer type), <see cref="double"/> (or <see cref="float"/>),
    /// <see cref="bool"/>, <see cref="string"/>, <see cref="byte"/>[] or <see langword="null"/>. An empty list is allowed.</param>
    /// <param name="name">The block's name, or null for a random one.</param>
    /// <exception cref="ArgumentException">An item is of another type (the message says which item and what to store instead),
    /// or a string or byte array is longer than a slot can be (9,999,991 bytes).</exception>
    /// <exception cref="ArgumentOutOfRangeException">An unsigned integer is beyond <see cref="long.MaxValue"/>.</exception>
    /// <exception cref="IOException">A block with <paramref name="name"/> exists already, or /dev/shm is full.</exception>
    public static ShareableList Create(IEnumerable<object?> items, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        var values = new List<object?>();
        foreach (var item in items) values.Add(Normalize(item, $"Item {values.Count}", nameof(items)));
        var count = values.Count;
        var encoded = new byte[]?[count];
        var formats = new string[count];
        var offsets = new long[count + 1];
        for (var i = 0; i < count; i++)
        {
            long slot = Alignment;
            encoded[i] = Encode(values[i], $"Item {i}", nameof(items));
            if (encoded[i] is { } bytes)
            {
                slot = (long)Alignment * (bytes.Length / Alignment + 1);
                if (slot > MaxSlotBytes)
                    throw new ArgumentException(
                        $"Item {i} is {bytes.Length} bytes long; a ShareableList slot holds at most {MaxSlotBytes - 1} bytes (its struct format, " +
                        $"such as \"{MaxSlotBytes}s\", must fit in 8 bytes, as in CPython). Keep large data in a SharedMemory block and store its name here.",
                        nameof(items));
                formats[i] = SlotFormat(slot);
            }
            else
            {
                formats[i] = FixedFormat(values[i]);
            }
            offsets[i + 1] = offsets[i] + slot;
        }
        // CPython's struct.calcsize("q" + "q" * (n + 1) + item formats + "8s" * n + "b" * n).
        var size = 8L + 8L * (count + 1) + offsets[count] + 8L * count + count;
        var shm = SharedMemory.Create(size, name);
        try
        {
            var list = new ShareableList(shm, offsets);
            list.WriteHeader();
            for (var i = 0; i < count; i++) list.Store(i, formats[i], CodeOf(values[i]), values[i], encoded[i]);
            return list;
        }
        catch
        {
            shm.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Attaches to a list made here or by Python (Python: <c>ShareableList(name=name)</c>), by its block's name with or
    /// without CPython's leading slash. The length is read from the block, which may be larger than the list needs.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid block name.</exception>
    /// <exception cref="FileNotFoundException">No block has that name (never created, or already unlinked).</exception>
    /// <exception cref="InvalidDataException">The block does not hold a ShareableList (its header does not describe one that fits).</exception>
    public static ShareableList Attach(string name)
    {
        var shm = SharedMemory.Attach(name);
        try
        {
            return new ShareableList(shm, ReadOffsets(shm));
        }
        catch
        {
            shm.Dispose();
            throw;
        }
    }

    /// <summary>The number of items (Python: <c>len(list)</c>); it never changes.</summary>
    public int Count { get; }

    /// <summary>The block's name, without a leading slash: what Python's <c>ShareableList(name=...)</c> takes.</summary>
    public string Name => _shm.Name;

    /// <summary>The shared-memory block that holds the list (Python: <c>list.shm</c>).</summary>
    public SharedMemory Shm => _shm;

    /// <summary>True for the handle that created the list (and unlinks it on <see cref="Dispose"/>).</summary>
    public bool IsOwner => _shm.IsOwner;

    /// <summary>
    /// The struct format of every item, joined (Python: <c>list.format</c>), e.g. <c>"qd8sxxxxxxx?"</c>: <c>q</c> for an
    /// integer, <c>d</c> for a double, <c>Ns</c> for a string or bytes in an N-byte slot, <c>xxxxxxx?</c> for a bool and
    /// <c>xxxxxx?x</c> for null.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public string Format
    {
        get
        {
            var formats = new StringBuilder();
            for (var i = 0; i < Count; i++) formats.Append(FormatAt(i));
            return formats.ToString();
        }
    }

    /// <summary>
    /// The item at <paramref name="index"/>: a <see cref="long"/>, <see cref="double"/>, <see cref="bool"/>,
    /// <see cref="string"/>, <see cref="byte"/>[] or <see langword="null"/>. Setting it writes the shared memory;
    /// the item may change type (an integer slot may take a double, a string slot a number), but a string or byte
    /// array must fit the slot (see <see cref="GetSlotSize"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside [0, <see cref="Count"/>); use
    /// <c>list[^1]</c> for Python's <c>list[-1]</c>. Also an unsigned integer beyond <see cref="long.MaxValue"/>.</exception>
    /// <exception cref="ArgumentException">The value is of a type a ShareableList cannot hold, or a string or byte array
    /// longer than the slot (the message says how many bytes it holds).</exception>
    /// <exception cref="InvalidDataException">The stored item is not readable (a format or code this layout does not have,
    /// or a string that is not valid UTF-8).</exception>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public object? this[int index]
    {
        get
        {
            CheckIndex(index);
            return Read(index);
        }
        set
        {
            CheckIndex(index);
            var item = Normalize(value, $"The value for index {index}", nameof(value));
            var encoded = Encode(item, $"The value for index {index}", nameof(value));
            string format;
            if (encoded is null)
            {
                format = FixedFormat(item);
            }
            else
            {
                var room = GetSlotSize(index);
                if (encoded.Length > room)
                    throw new ArgumentException(
                        $"The {(item is string ? "string" : "byte array")} for index {index} of the ShareableList '{Name}' is {encoded.Length} bytes" +
                        $"{(item is string ? " in UTF-8" : "")}, but that slot holds at most {room} bytes (its room was set by the value the list was " +
                        $"created with; Python says \"bytes/str item exceeds available storage\"). Store a shorter value, or create the list with a " +
                        $"placeholder of at least {encoded.Length} bytes at that index (e.g. new string(' ', {encoded.Length})).",
                        nameof(value));
                // As CPython: a string slot keeps its format; a slot that held a number or null gets one for all its room.
                var current = FormatAt(index);
                format = TryWidth(Encoding.ASCII.GetBytes(current), out var width) && width >= encoded.Length && width <= room
                    ? current
                    : SlotFormat(room);
            }
            Store(index, format, CodeOf(item), item, encoded);
        }
    }

    /// <summary>The item at <paramref name="index"/>, counting from the end with <c>^</c>: <c>list[^1]</c> is Python's <c>list[-1]</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside the list.</exception>
    /// <exception cref="ArgumentException">A value the list cannot hold, as for <c>this[int]</c>.</exception>
    public object? this[Index index]
    {
        get => this[index.GetOffset(Count)];
        set => this[index.GetOffset(Count)] = value;
    }

    /// <summary>The integer at <paramref name="index"/>.</summary>
    /// <exception cref="InvalidCastException">The item is not an integer (the message says what it is).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside the list.</exception>
    public long GetInt64(int index) => this[index] is long value ? value : throw WrongType(index, "an integer (long)");

    /// <summary>The double at <paramref name="index"/> (Python <c>float</c>).</summary>
    /// <exception cref="InvalidCastException">The item is not a double (an integer is not converted).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside the list.</exception>
    public double GetDouble(int index) => this[index] is double value ? value : throw WrongType(index, "a double");

    /// <summary>The bool at <paramref name="index"/>.</summary>
    /// <exception cref="InvalidCastException">The item is not a bool.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside the list.</exception>
    public bool GetBoolean(int index) => this[index] is bool value ? value : throw WrongType(index, "a bool");

    /// <summary>The string at <paramref name="index"/> (Python <c>str</c>).</summary>
    /// <exception cref="InvalidCastException">The item is not a string.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside the list.</exception>
    public string GetString(int index) => this[index] is string value ? value : throw WrongType(index, "a string");

    /// <summary>The bytes at <paramref name="index"/> (Python <c>bytes</c>), copied into a new array.</summary>
    /// <exception cref="InvalidCastException">The item is not a byte array.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside the list.</exception>
    public byte[] GetBytes(int index) => this[index] is byte[] value ? value : throw WrongType(index, "a byte array");

    /// <summary>True when the item at <paramref name="index"/> is <see langword="null"/> (Python <c>None</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside the list.</exception>
    public bool IsNull(int index) => this[index] is null;

    /// <summary>
    /// How many bytes of string (in UTF-8) or byte array the slot at <paramref name="index"/> can take: set when the
    /// list was created (8 for a number, bool or null; a string's or byte array's length rounded up past the next multiple of 8).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside the list.</exception>
    public long GetSlotSize(int index)
    {
        CheckIndex(index);
        return _offsets[index + 1] - _offsets[index];
    }

    /// <summary>
    /// The index of the first item equal to <paramref name="value"/>, or -1 (Python's <c>index</c>, which raises
    /// instead). Equality is Python's: <c>1</c>, <c>1.0</c> and <c>true</c> are equal, byte arrays compare by content.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public int IndexOf(object? value)
    {
        var wanted = Widened(value);
        for (var i = 0; i < Count; i++)
            if (PythonEquals(wanted, Read(i))) return i;
        return -1;
    }

    /// <summary>How many items equal <paramref name="value"/> (Python's <c>count</c>), with Python's equality as in <see cref="IndexOf"/>.</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public int CountOf(object? value)
    {
        var wanted = Widened(value);
        var found = 0;
        for (var i = 0; i < Count; i++)
            if (PythonEquals(wanted, Read(i))) found++;
        return found;
    }

    /// <summary>Whether an item equals <paramref name="value"/> (Python's <c>value in list</c>), with Python's equality as in <see cref="IndexOf"/>.</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public bool Contains(object? value) => IndexOf(value) >= 0;

    /// <summary>Reads the items one by one, as they are when each is reached.</summary>
    public IEnumerator<object?> GetEnumerator()
    {
        for (var i = 0; i < Count; i++) yield return Read(i);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>
    /// Removes the block's name so that no process can attach to it any more (Python: <c>list.shm.unlink()</c>);
    /// processes that have it mapped keep using it. Unlinking twice does nothing.
    /// </summary>
    public void Unlink() => _shm.Unlink();

    /// <summary>Releases this handle's mapping (Python: <c>list.shm.close()</c>); the creator's handle also unlinks the block.</summary>
    public void Dispose() => _shm.Dispose();

    /// <summary>Python's <c>repr</c>: <c>ShareableList([42, 2.5, 'hello', b'\x01\x02', True, None], name='psm_1f3a9c0b')</c>.</summary>
    public override string ToString()
    {
        var items = new StringBuilder();
        for (var i = 0; i < Count; i++)
        {
            if (i > 0) items.Append(", ");
            items.Append(Repr(Read(i)));
        }
        return $"ShareableList([{items}], name={StrRepr(Name)})";
    }

    // ---- Layout (CPython's shared_memory.ShareableList) ----
    // 8 bytes: the number of items N; (N + 1) * 8: the offsets of the slots in the data area, then its end;
    // the data area; N * 8: each item's struct format, NUL-padded; N bytes: each item's back-transform code.
    // Numbers are native (little-endian on every platform this library runs on), as CPython's struct writes them.

    private long DataStart => (Count + 2L) * 8;

    private long FormatsStart => DataStart + _offsets[Count];

    private long CodesStart => FormatsStart + 8L * Count;

    private void WriteHeader()
    {
        BinaryPrimitives.WriteInt64LittleEndian(_shm.GetSpan(0, 8), Count);
        for (var i = 0; i <= Count; i++) BinaryPrimitives.WriteInt64LittleEndian(_shm.GetSpan(8L + 8L * i, 8), _offsets[i]);
    }

    private static long[] ReadOffsets(SharedMemory shm)
    {
        string problem;
        if (shm.Size < 16)
        {
            problem = $"it is {shm.Size} bytes, fewer than the 16 of an empty list";
        }
        else
        {
            var count = BinaryPrimitives.ReadInt64LittleEndian(shm.GetSpan(0, 8));
            // Each item takes at least 8 bytes of offset, 8 of format and 1 of code.
            if (count < 0 || count > (shm.Size - 16) / 17 || count >= int.MaxValue)
            {
                problem = $"its first 8 bytes say {count} items, which {shm.Size} bytes cannot describe";
            }
            else
            {
                var offsets = new long[(int)count + 1];
                var previous = 0L;
                problem = "";
                for (var i = 0; i <= count && problem.Length == 0; i++)
                {
                    offsets[i] = BinaryPrimitives.ReadInt64LittleEndian(shm.GetSpan(8L + 8L * i, 8));
                    if (offsets[i] < previous || offsets[i] > shm.Size)
                        problem = $"the offset of slot {i} ({offsets[i]}) is out of order or past the end of the block";
                    previous = offsets[i];
                }
                if (problem.Length == 0)
                {
                    var needed = (count + 2) * 8 + offsets[count] + 9 * count;
                    if (needed <= shm.Size) return offsets;
                    problem = $"its header describes {needed} bytes, more than the block's {shm.Size}";
                }
            }
        }
        throw new InvalidDataException(
            $"The shared-memory block '{shm.Name}' does not hold a ShareableList: {problem}. A list made by Python's ShareableList " +
            "or by ShareableList.Create attaches here; open other blocks with SharedMemory.Attach.");
    }

    private void CheckIndex(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, Count == 0
                ? $"The ShareableList '{Name}' is empty: it has no index {index}."
                : $"Index {index} is outside the ShareableList '{Name}' of {Count} items (0 to {Count - 1}); for Python's list[-1] use list[^1].");
    }

    /// <summary>The item's struct format, as CPython reads it: 8 bytes with the trailing NULs stripped.</summary>
    private string FormatAt(int index)
    {
        ReadOnlySpan<byte> format = _shm.GetSpan(FormatsStart + 8L * index, 8);
        return Decode(format.TrimEnd((byte)0), index, "struct format");
    }

    private object? Read(int index)
    {
        ReadOnlySpan<byte> format = _shm.GetSpan(FormatsStart + 8L * index, 8);
        format = format.TrimEnd((byte)0);
        var code = (sbyte)_shm.GetSpan(CodesStart + index, 1)[0];
        var at = DataStart + _offsets[index];
        object? raw;
        if (format.SequenceEqual("q"u8)) raw = BinaryPrimitives.ReadInt64LittleEndian(_shm.GetSpan(at, 8));
        else if (format.SequenceEqual("d"u8)) raw = BinaryPrimitives.ReadDoubleLittleEndian(_shm.GetSpan(at, 8));
        else if (format.SequenceEqual("xxxxxxx?"u8)) raw = _shm.GetSpan(at, 8)[7] != 0;
        else if (format.SequenceEqual("xxxxxx?x"u8)) raw = _shm.GetSpan(at, 8)[6] != 0;
        else if (TryWidth(format, out var width)) raw = _shm.GetSpan(at, width).ToArray();
        else
            throw new InvalidDataException(
                $"Item {index} of the ShareableList '{Name}' has the struct format '{Encoding.ASCII.GetString(format)}', which a ShareableList " +
                "does not write (it writes q, d, Ns, xxxxxxx? and xxxxxx?x): the block was changed by something else.");
        switch (code)
        {
            case CodeValue:
                return raw;
            case CodeString when raw is byte[] text:
                return Decode(new ReadOnlySpan<byte>(text).TrimEnd((byte)0), index, "string");
            case CodeBytes when raw is byte[] bytes:
                return new ReadOnlySpan<byte>(bytes).TrimEnd((byte)0).ToArray();
            case CodeNone:
                return null;
            default:
                throw new InvalidDataException(
                    $"Item {index} of the ShareableList '{Name}' has the back-transform code {code} with the format " +
                    $"'{Encoding.ASCII.GetString(format)}', which a ShareableList does not write: the block was changed by something else.");
        }
    }

    private void Store(int index, string format, sbyte code, object? value, byte[]? encoded)
    {
        if (format.Length > 8)
            throw new InvalidOperationException($"The slot at index {index} of the ShareableList '{Name}' is too large for its struct format '{format}' to fit CPython's 8 bytes.");
        // As CPython: the format and code first, then the value.
        var formatSlot = _shm.GetSpan(FormatsStart + 8L * index, 8);
        formatSlot.Clear();
        _ = Encoding.ASCII.GetBytes(format.AsSpan(), formatSlot);
        _shm.GetSpan(CodesStart + index, 1)[0] = unchecked((byte)code);
        var at = DataStart + _offsets[index];
        switch (value)
        {
            case long number:
                BinaryPrimitives.WriteInt64LittleEndian(_shm.GetSpan(at, 8), number);
                break;
            case double number:
                BinaryPrimitives.WriteDoubleLittleEndian(_shm.GetSpan(at, 8), number);
                break;
            case bool flag:
                var boolSlot = _shm.GetSpan(at, 8);
                boolSlot.Clear();
                boolSlot[7] = flag ? (byte)1 : (byte)0;
                break;
            case null:
                _shm.GetSpan(at, 8).Clear(); // "xxxxxx?x" packs None as False, between pad bytes
                break;
            default:
                _ = TryWidth(Encoding.ASCII.GetBytes(format), out var width);
                var slot = _shm.GetSpan(at, width);
                slot.Clear();
                encoded.AsSpan().CopyTo(slot);
                break;
        }
    }

    /// <summary>The width N of a format "Ns" (CPython's "s" alone is 1).</summary>
    private static bool TryWidth(ReadOnlySpan<byte> format, out int width)
    {
        width = 0;
        if (format.Length == 0 || format[^1] != (byte)'s') return false;
        if (format.Length == 1)
        {
            width = 1;
            return true;
        }
        foreach (var digit in format[..^1])
        {
            if (digit is < (byte)'0' or > (byte)'9' || width > 100_000_000) return false;
            width = width * 10 + (digit - '0');
        }
        return true;
    }

    private static string SlotFormat(long bytes) => bytes.ToString(CultureInfo.InvariantCulture) + "s";

    private static string FixedFormat(object? item) => item switch
    {
        long => "q",
        double => "d",
        bool => "xxxxxxx?",
        _ => "xxxxxx?x",
    };

    private static sbyte CodeOf(object? item) => item switch
    {
        string => CodeString,
        byte[] _ => CodeBytes,
        null => CodeNone,
        _ => CodeValue,
    };

    /// <summary>The value as the list stores it (integers as long, float as double), or an exception in the user's terms.</summary>
    private static object? Normalize(object? value, string what, string parameter)
    {
        var widened = Widened(value);
        return widened switch
        {
            null => null,
            long or double or bool or string or byte[] => widened,
            ulong number => throw new ArgumentOutOfRangeException(parameter, number,
                $"{what} is {number}, beyond what a ShareableList integer holds (a 64-bit signed integer, Python's struct format 'q'). Store it as a string or a double."),
            _ => throw new ArgumentException(
                $"{what} is a {value!.GetType()}, which a ShareableList cannot hold. It holds what CPython's does: long (Python int; int and the other " +
                "integer types are widened), double (float), bool, string (str), byte[] (bytes) and null (None). Convert it first, e.g. a DateTime " +
                "to its ISO 8601 string (ToString(\"o\")) or its Ticks, a char to a string, a decimal to a double or a string.",
                parameter),
        };
    }

    /// <summary>Integers widened to long (a ulong only when it fits) and float to double, as the list stores and compares them; anything else as is.</summary>
    private static object? Widened(object? value) => value switch
    {
        int number => (long)number,
        short number => (long)number,
        sbyte number => (long)number,
        byte number => (long)number,
        ushort number => (long)number,
        uint number => (long)number,
        ulong number when number <= (ulong)long.MaxValue => (long)number,
        float number => (double)number,
        _ => value,
    };

    private static byte[]? Encode(object? item, string what, string parameter)
    {
        switch (item)
        {
            case byte[] bytes:
                return bytes;
            case string text:
                try
                {
                    return Utf8.GetBytes(text);
                }
                catch (EncoderFallbackException e)
                {
                    throw new ArgumentException(
                        $"{what} is a string with a lone surrogate (half of a character such as an emoji), which has no UTF-8 form; Python refuses it too.",
                        parameter, e);
                }
            default:
                return null;
        }
    }

    private string Decode(ReadOnlySpan<byte> bytes, int index, string what)
    {
        try
        {
            return Utf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException(
                $"The {what} of item {index} of the ShareableList '{Name}' is not valid UTF-8 (Python's UnicodeDecodeError). CPython sizes a new " +
                "string's slot by characters, not bytes, so a non-ASCII string it created may have been cut in the middle of a character.", e);
        }
    }

    private InvalidCastException WrongType(int index, string wanted)
    {
        var value = Read(index);
        var what = value switch
        {
            null => "null (None)",
            long => "an integer (long)",
            double => "a double",
            bool => "a bool",
            string => "a string",
            byte[] _ => "a byte array",
            _ => value!.GetType().Name,
        };
        return new InvalidCastException($"Item {index} of the ShareableList '{Name}' is {what}, {Repr(value)}, not {wanted}. Read it with the indexer to take any type.");
    }

    // ---- Python's equality (count, index) ----

    private static bool PythonEquals(object? a, object? b)
    {
        if (a is null || b is null) return a is null && b is null;
        if (a is string x && b is string y) return string.Equals(x, y, StringComparison.Ordinal);
        if (a is byte[] p && b is byte[] q) return new ReadOnlySpan<byte>(p).SequenceEqual(new ReadOnlySpan<byte>(q));
        if (!TryNumber(a, out var aIsDouble, out var aLong, out var aDouble) || !TryNumber(b, out var bIsDouble, out var bLong, out var bDouble)) return false;
        if (!aIsDouble && !bIsDouble) return aLong == bLong;
        if (aIsDouble && bIsDouble) return aDouble == bDouble;
        // An integer equals a double only when the double is exactly that integer, as in Python (no rounding of the integer).
        var (integer, real) = aIsDouble ? (bLong, aDouble) : (aLong, bDouble);
        return real == Math.Floor(real) && real >= -9.2233720368547758E18 && real < 9.2233720368547758E18 && (long)real == integer;
    }

    private static bool TryNumber(object value, out bool isDouble, out long integer, out double real)
    {
        (isDouble, integer, real) = value switch
        {
            long number => (false, number, 0d),
            bool flag => (false, flag ? 1L : 0L, 0d),
            double number => (true, 0L, number),
            _ => (false, 0L, double.NaN),
        };
        return value is long or bool or double;
    }

    // ---- Python's repr ----

    private static string Repr(object? value) => value switch
    {
        null => "None",
        bool flag => flag ? "True" : "False",
        long number => number.ToString(CultureInfo.InvariantCulture),
        double number => FloatRepr(number),
        string text => StrRepr(text),
        byte[] bytes => BytesRepr(bytes),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>Python's repr of a float: the shortest digits that read back the same, fixed between 1e-4 and 1e16, else with an exponent.</summary>
    private static string FloatRepr(double value)
    {
        if (double.IsNaN(value)) return "nan";
        if (double.IsInfinity(value)) return value > 0 ? "inf" : "-inf";
        var sign = double.IsNegative(value) ? "-" : "";
        if (value == 0) return sign + "0.0";
        var shortest = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture); // e.g. "2.5", "1E+16", "1.5E-07"
        var e = shortest.IndexOf('E', StringComparison.Ordinal);
        var mantissa = e < 0 ? shortest : shortest[..e];
        var exponent = e < 0 ? 0 : int.Parse(shortest[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        var point = mantissa.IndexOf('.', StringComparison.Ordinal);
        var digits = point < 0 ? mantissa : mantissa.Remove(point, 1);
        // The decimal point comes after `position` digits.
        var position = (point < 0 ? mantissa.Length : point) + exponent;
        var significant = digits.TrimStart('0');
        position -= digits.Length - significant.Length;
        digits = significant.TrimEnd('0');
        if (digits.Length == 0) return sign + "0.0";
        string body;
        if (position > -4 && position <= 16)
        {
            if (position <= 0) body = "0." + new string('0', -position) + digits;
            else if (position >= digits.Length) body = digits + new string('0', position - digits.Length) + ".0";
            else body = digits[..position] + "." + digits[position..];
        }
        else
        {
            var power = position - 1;
            body = digits[..1] + (digits.Length > 1 ? "." + digits[1..] : "") + "e" + (power < 0 ? "-" : "+")
                + Math.Abs(power).ToString("00", CultureInfo.InvariantCulture);
        }
        return sign + body;
    }

    /// <summary>Python's repr of a str: single quotes unless it holds one and no double quote; escapes for the unprintable.</summary>
    private static string StrRepr(string text)
    {
        var quote = text.Contains('\'') && !text.Contains('"') ? '"' : '\'';
        var repr = new StringBuilder().Append(quote);
        foreach (var rune in text.EnumerateRunes())
        {
            var c = rune.Value;
            if (c == quote || c == '\\') repr.Append('\\').Append((char)c);
            else if (c == '\t') repr.Append("\\t");
            else if (c == '\n') repr.Append("\\n");
            else if (c == '\r') repr.Append("\\r");
            else if (c < 0x20 || c == 0x7f) repr.Append("\\x").Append(c.ToString("x2", CultureInfo.InvariantCulture));
            else if (c < 0x7f || Printable(rune)) repr.Append(rune.ToString());
            else if (c <= 0xff) repr.Append("\\x").Append(c.ToString("x2", CultureInfo.InvariantCulture));
            else if (c <= 0xffff) repr.Append("\\u").Append(c.ToString("x4", CultureInfo.InvariantCulture));
            else repr.Append("\\U").Append(c.ToString("x8", CultureInfo.InvariantCulture));
        }
        return repr.Append(quote).ToString();
    }

    private static bool Printable(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
            or UnicodeCategory.SpaceSeparator => rune.Value == ' ',
        _ => true,
    };

    /// <summary>Python's repr of bytes: <c>b'...'</c> with printable ASCII as is and the rest as <c>\xNN</c>.</summary>
    private static string BytesRepr(byte[] bytes)
    {
        var quote = Array.IndexOf(bytes, (byte)'\'') >= 0 && Array.IndexOf(bytes, (byte)'"') < 0 ? '"' : '\'';
        var repr = new StringBuilder("b").Append(quote);
        foreach (var b in bytes)
        {
            if (b == quote || b == '\\') repr.Append('\\').Append((char)b);
            else if (b == '\t') repr.Append("\\t");
            else if (b == '\n') repr.Append("\\n");
            else if (b == '\r') repr.Append("\\r");
            else if (b < 0x20 || b >= 0x7f) repr.Append("\\x").Append(b.ToString("x2", CultureInfo.InvariantCulture));
            else repr.Append((char)b);
        }
        return repr.Append(quote).ToString();
    }
}
