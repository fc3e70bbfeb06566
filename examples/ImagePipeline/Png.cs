using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ImagePipeline;

/// <summary>A minimal PNG writer: 8-bit RGB, no filtering, one IDAT chunk compressed with zlib.</summary>
public static class Png
{
    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>Writes two images of the same shape next to each other.</summary>
    public static void WriteSideBySide(string path, ReadOnlySpan<byte> left, ReadOnlySpan<byte> right, ImageShape shape)
    {
        int h = shape.Height, w = shape.Width, ch = shape.Channels, outWidth = w * 2;
        var raw = new byte[h * (1 + outWidth * 3)];
        for (var y = 0; y < h; y++)
        {
            var row = y * (1 + outWidth * 3); // each row starts with its filter type: 0, none
            for (var x = 0; x < outWidth; x++)
            {
                var source = x < w ? left : right;
                var pixel = (y * w + x % w) * ch;
                for (var c = 0; c < 3; c++) raw[row + 1 + x * 3 + c] = source[pixel + Math.Min(c, ch - 1)];
            }
        }
        using var file = File.Create(path);
        file.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, outWidth);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), h);
        header[8] = 8; // bits per channel
        header[9] = 2; // colour type: RGB
        WriteChunk(file, "IHDR", header);
        using (var compressed = new MemoryStream())
        {
            using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) z.Write(raw);
            WriteChunk(file, "IDAT", compressed.ToArray());
        }
        WriteChunk(file, "IEND", []);
    }

    private static void WriteChunk(Stream stream, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        stream.Write(word);
        var typeBytes = Encoding.ASCII.GetBytes(type);
        stream.Write(typeBytes);
        stream.Write(data);
        var crc = Crc(Crc(0xFFFFFFFFu, typeBytes), data) ^ 0xFFFFFFFFu;
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        stream.Write(word);
    }

    private static uint Crc(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
