using MessagePack;

namespace Multiprocessing;

/// <summary>The shared cache behind <see cref="Manager.Memoize{TArg, TResult}"/>: least recently used entries go first.</summary>
internal sealed class ServedCache(int maxEntries) : ServedObject
{
    private readonly Dictionary<BlobKey, LinkedListNode<(BlobKey Key, byte[] Value)>> _index = [];
    private readonly LinkedList<(BlobKey Key, byte[] Value)> _recency = new();

    public override ServedKind Kind => ServedKind.Cache;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        lock (_index)
        {
            switch (op)
            {
                case ManagerOp.CacheGet:
                    if (_index.TryGetValue(new BlobKey(ReadBlob(ref args)), out var node))
                    {
                        _recency.Remove(node);
                        _recency.AddFirst(node);
                        reply.Write(true);
                        reply.Write(node.Value.Value);
                    }
                    else reply.Write(false);
                    break;
                case ManagerOp.CachePut:
                {
                    var key = new BlobKey(ReadBlob(ref args));
                    var value = ReadBlob(ref args);
                    if (_index.TryGetValue(key, out var existing)) _recency.Remove(existing);
                    _index[key] = _recency.AddFirst((key, value));
                    while (_index.Count > maxEntries)
                    {
                        var oldest = _recency.Last!;
                        _recency.RemoveLast();
                        _index.Remove(oldest.Value.Key);
                    }
                    break;
                }
                default: throw Unknown(op, Kind);
            }
        }
    }
}
