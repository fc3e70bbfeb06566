using MessagePack;

namespace Multiprocessing;

/// <summary>Serves <see cref="DictionaryProxy{TKey, TValue}"/> and <see cref="NamespaceProxy"/>.</summary>
internal sealed class ServedDictionary : ServedObject
{
    private readonly Dictionary<BlobKey, byte[]> _items = [];

    public override ServedKind Kind => ServedKind.Dictionary;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        lock (_items)
        {
            switch (op)
            {
                case ManagerOp.DictGet:
                    if (_items.TryGetValue(new BlobKey(ReadBlob(ref args)), out var found)) { reply.Write(true); reply.Write(found); }
                    else reply.Write(false);
                    break;
                case ManagerOp.DictSet:
                {
                    var key = new BlobKey(ReadBlob(ref args));
                    _items[key] = ReadBlob(ref args);
                    break;
                }
                case ManagerOp.DictAdd:
                {
                    var key = new BlobKey(ReadBlob(ref args));
                    reply.Write(_items.TryAdd(key, ReadBlob(ref args)));
                    break;
                }
                case ManagerOp.DictRemove:
                    reply.Write(_items.Remove(new BlobKey(ReadBlob(ref args))));
                    break;
                case ManagerOp.DictContainsKey:
                    reply.Write(_items.ContainsKey(new BlobKey(ReadBlob(ref args))));
                    break;
                case ManagerOp.DictCount:
                    reply.Write(_items.Count);
                    break;
                case ManagerOp.DictClear:
                    _items.Clear();
                    break;
                case ManagerOp.DictItems:
                    reply.WriteArrayHeader(_items.Count * 2);
                    foreach (var (key, value) in _items) { reply.Write(key.Bytes); reply.Write(value); }
                    break;
                case ManagerOp.DictContainsPair:
                {
                    var key = new BlobKey(ReadBlob(ref args));
                    var value = ReadBlob(ref args);
                    reply.Write(_items.TryGetValue(key, out var existing) && existing.AsSpan().SequenceEqual(value));
                    break;
                }
                case ManagerOp.DictRemovePair:
                {
                    var key = new BlobKey(ReadBlob(ref args));
                    var value = ReadBlob(ref args);
                    var match = _items.TryGetValue(key, out var existing) && existing.AsSpan().SequenceEqual(value);
                    reply.Write(match && _items.Remove(key));
                    break;
                }
                case ManagerOp.DictAddOrUpdate:
                {
                    var key = ReadBlob(ref args);
                    var addValue = ReadBlob(ref args);
                    var update = ServedCode.ReadDelegate(ref args);
                    var blobKey = new BlobKey(key);
                    var result = _items.TryGetValue(blobKey, out var old) ? ServedCode.UpdateEntry(update, key, old) : addValue;
                    _items[blobKey] = result;
                    reply.Write(result);
                    break;
                }
                default:
                    throw Unknown(op, Kind);
            }
        }
    }
}
