namespace Multiprocessing;

/// <summary>A serialized key: equal when the bytes are equal.</summary>
internal readonly struct BlobKey : IEquatable<BlobKey>
{
    private readonly int _hash;

    public BlobKey(byte[] bytes)
    {
        Bytes = bytes;
        var hash = new HashCode();
        hash.AddBytes(bytes);
        _hash = hash.ToHashCode();
    }

    public byte[] Bytes { get; }

    public bool Equals(BlobKey other) => _hash == other._hash && Bytes.AsSpan().SequenceEqual(other.Bytes);
    public override bool Equals(object? obj) => obj is BlobKey other && Equals(other);
    public override int GetHashCode() => _hash;
}
