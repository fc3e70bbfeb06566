using MessagePack;

namespace Multiprocessing;

/// <summary>Serves <see cref="ListProxy{T}"/>.</summary>
internal sealed class ServedList : ServedObject
{
    private readonly List<byte[]> _items = [];

    public override ServedKind Kind => ServedKind.List;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        lock (_items)
        {
            switch (op)
            {
                case ManagerOp.ListCount: reply.Write(_items.Count); break;
                case ManagerOp.ListGet: reply.Write(_items[CheckIndex(args.ReadInt32(), _items.Count)]); break;
                case ManagerOp.ListSet:
                {
                    var index = CheckIndex(args.ReadInt32(), _items.Count);
                    _items[index] = ReadBlob(ref args);
                    break;
                }
                case ManagerOp.ListInsert:
                {
                    var index = CheckIndex(args.ReadInt32(), _items.Count + 1);
                    _items.Insert(index, ReadBlob(ref args));
                    break;
                }
                case ManagerOp.ListRemoveAt: _items.RemoveAt(CheckIndex(args.ReadInt32(), _items.Count)); break;
                case ManagerOp.ListAdd: _items.Add(ReadBlob(ref args)); break;
                case ManagerOp.ListIndexOf: reply.Write(IndexOf(ReadBlob(ref args))); break;
                case ManagerOp.ListRemove:
                {
                    var index = IndexOf(ReadBlob(ref args));
                    if (index >= 0) _items.RemoveAt(index);
                    reply.Write(index >= 0);
                    break;
                }
                case ManagerOp.ListClear: _items.Clear(); break;
                case ManagerOp.ListItems:
                    reply.WriteArrayHeader(_items.Count);
                    foreach (var item in _items) reply.Write(item);
                    break;
                default: throw Unknown(op, Kind);
            }
        }
    }

    private int IndexOf(byte[] value) => _items.FindIndex(item => item.AsSpan().SequenceEqual(value));

    // limit is Count, or Count + 1 for Insert (which may append).
    private static int CheckIndex(int index, int limit) =>
        (uint)index < (uint)limit ? index
        : throw new ArgumentOutOfRangeException(nameof(index), index,
            limit == 0 ? $"Index {index} is out of range: the manager's list is empty." : $"Index {index} is out of range: valid indexes here are 0 to {limit - 1}.");
}
